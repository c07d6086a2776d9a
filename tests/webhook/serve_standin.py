"""A webhook process over the examples' stand-in, for the tests that signal it:
``serve_standin.py CERT KEY DELAY``; logs "serving on https://127.0.0.1:PORT" on stderr and
"deciding" as each decision starts (each takes DELAY seconds, on a thread, so that the
event loop carries on meanwhile)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastmatch.kube.server import TlsFiles, WebhookServer

from webhook_world import StandIn, example_world


class Announcing(StandIn):
    def match_pod(self, pod_obj: Any, **kwargs: Any) -> Any:
        print("deciding", file=sys.stderr, flush=True)
        return super().match_pod(pod_obj, **kwargs)


def main() -> int:
    cert, key, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    world = example_world(delay=delay)
    world.__class__ = Announcing
    server = WebhookServer(world, TlsFiles(cert, key), host="127.0.0.1", port=0,
                           budget_ms=20_000, grace=10, workers=2)
    return server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
