"""``fastmatch webhook``: the admission webhook (SPEC §10).

Follows the cluster's ImageCaches, the eci-profile and the namespaces
(:class:`fastmatch.kube.ClusterIndex`), and serves ``POST /mutate`` over HTTPS:
each pod CREATE gets the cache ECI would pick, as annotations, a named cache
ECI would refuse is denied, and the cache a miss proposes is created once per
image set.  ``/healthz``, ``/readyz`` (once the first sync is applied) and
``/metrics`` serve the probes and Prometheus.  Needs the ``kube`` extra.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from fastmatch import argtypes
from fastmatch.errors import FastmatchError

__all__ = ["add_webhook_parser", "run_webhook"]

_EPILOG = """\
example (the certificate from cert-manager, mounted from a Secret):
  fastmatch webhook --tls-cert /tls/tls.crt --tls-key /tls/tls.key --catalog /etc/catalog.jsonl

exit status: 0 after SIGTERM or SIGINT (requests in flight finished), 2 on bad usage or
files that do not load.
"""








def add_webhook_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``fastmatch webhook`` to an argparse sub-parser set."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "webhook",
        help="the admission webhook: patch pods with the cache ECI would pick",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kubeconfig", metavar="PATH",
                        help="kubeconfig file (default: the in-cluster service account, "
                             "else ~/.kube/config)")
    parser.add_argument("--tls-cert", required=True, metavar="FILE",
                        help="the server certificate (PEM, with its chain); reloaded when "
                             "it changes")
    parser.add_argument("--tls-key", required=True, metavar="FILE",
                        help="its private key (PEM); reloaded when it changes")
    parser.add_argument("--host", default="0.0.0.0", metavar="ADDR",
                        help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=argtypes.integer(0, 65535), default=8443,
                        help="port (default 8443)")
    parser.add_argument("--catalog", metavar="FILE",
                        help="image catalog (JSON Lines, as fastmatch resolve writes it): "
                             "the images' layers")
    parser.add_argument("--resolve", action="store_true",
                        help="resolve images unknown to the catalog from their registries, "
                             "in the background (never on the request's path)")
    parser.add_argument("--budget-ms", type=argtypes.number(strict=True, unit="milliseconds"),
                        default=200.0, metavar="MS",
                        help="time to answer a review in; past it the pod is admitted "
                             "unchanged, with a warning (default 200)")
    parser.add_argument("--workers", type=argtypes.integer(0, 64), default=0, metavar="N",
                        help="threads that decide, making the budget a hard deadline even "
                             "for a decision that blocks, at a quarter more CPU a review "
                             "(default 0: decide on the event loop, and drop a decision "
                             "that ends past the budget)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        default="info",
                        help="log level (debug: one line per decision; default info)")
    parser.set_defaults(func=run_webhook)
    return parser


def _api_client(kubeconfig: str | None) -> Any:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if kubeconfig is not None:
            return config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig)
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as exc:
        where = f"--kubeconfig {kubeconfig}" if kubeconfig else "the cluster's configuration"
        raise FastmatchError(f"{where}: {exc}") from None
    return client.ApiClient()


def run_webhook(args: argparse.Namespace) -> int:
    """Run ``fastmatch webhook`` until SIGTERM; return the exit code."""
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from fastmatch import kube
        from fastmatch.kube.autocreate import AutoCreator, create_with_client
        from fastmatch.kube.server import TlsFiles, WebhookServer
    except ImportError as exc:
        raise FastmatchError(
            f"fastmatch webhook needs the kube extra (pip install 'fastmatch[kube]'): {exc}"
        ) from None
    from fastmatch.inputs import read_catalog

    tls = TlsFiles(args.tls_cert, args.tls_key)  # bad files: an error before any API call
    catalog = read_catalog(args.catalog) if args.catalog is not None else None
    cluster_index = getattr(kube, "ClusterIndex", None)  # the cluster sync's, beside this
    if cluster_index is None:
        raise FastmatchError("fastmatch webhook: this build has no cluster sync "
                             "(fastmatch.kube.ClusterIndex)")
    resolver = None
    if args.resolve:
        from fastmatch.registry import Resolver

        resolver = Resolver(catalog=catalog)
    api_client = _api_client(args.kubeconfig)
    cluster = cluster_index(api_client, catalog=catalog, resolver=resolver)
    creator = AutoCreator(create_with_client(api_client))
    server = WebhookServer(cluster, tls, host=args.host, port=args.port,
                           budget_ms=args.budget_ms, creator=creator, workers=args.workers,
                           # Warn of images the catalog lacks, unless the resolver is
                           # finding them (then the next pod of the image has its layers).
                           layers=catalog if resolver is None else None)
    cluster.start()
    creator.start()
    try:
        return server.serve_forever()
    finally:
        creator.stop()
        cluster.stop()
        if resolver is not None:
            resolver.close()
