"""A small, strict Kubernetes API server on loopback, for the tests of the cluster sync.

There is no kube-apiserver on the test machines, so this speaks the parts of its protocol the
sync and the webhook use, as the real server does, well enough for the official ``kubernetes``
client to work against it unchanged:

- one global integer revision (etcd's) stamps every write, as a string ``resourceVersion``;
- lists are read at one revision: ``limit``/``continue`` pages, ``resourceVersion`` with
  ``resourceVersionMatch`` (``NotOlderThan``, ``Exact``; ``0`` means any, served as from the
  watch cache: the current state in one page, whatever the limit), label selectors and
  field selectors on ``metadata.name``/``metadata.namespace``; a continue token whose revision
  was compacted, or older than ``page_token_ttl``, gets 410 ``Expired``;
- watches stream one JSON event per HTTP chunk from a revision, out of a bounded history whose
  too-old revisions get 410 (an ``ERROR`` event, or an HTTP 410, per option); ``BOOKMARK``
  events when asked for; ``timeoutSeconds`` ends the stream cleanly; selectors turn an object
  that enters or leaves them into ADDED or DELETED; ``sendInitialEvents`` streaming lists;
- writes over HTTP as the API server takes them: POST (409 ``AlreadyExists``), PUT (409
  ``Conflict`` on a stale ``resourceVersion``), PATCH (merge and JSON patch), DELETE (with
  preconditions), ``dryRun=All``; an ImageCache's ``status`` belongs to its subresource;
- faults a real cluster has: compaction, streams dropped without their final chunk, streams
  gone silent, a watcher too slow to read cut, a restart on the same port with the state kept,
  answers of 429/500/... with real ``Status`` bodies and ``Retry-After``.

The tests drive the state from Python (``create``, ``update``, ``patch``, ``delete``,
``churn``: what controllers do to etcd) and read what the client asked in ``requests``. The
pytest fixture ``apiserver`` (conftest.py) yields a started one; benchmarks may import this
module with tests/kube on ``sys.path``, and run it in a child process of its own
(``RemoteApiServer``) so that it does not share the client's GIL. Simplifications, on purpose: no
authentication, discovery names only the three kinds, namespaces are deleted at once (no
``Terminating``), and a ConfigMap may name a namespace that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import queue
import random
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import kubernetes

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """One resource the server serves: its plural, its type and where its objects live."""

    plural: str
    kind: str
    group: str
    version: str
    namespaced: bool
    custom: bool  # a custom resource: unstructured, with a status subresource

    @property
    def api_version(self) -> str:
        """``group/version``, or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """The resource as the API server names it in messages (``imagecaches.eci...``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


KINDS: dict[str, Kind] = {
    "imagecaches": Kind("imagecaches", "ImageCache", "eci.alibabacloud.com", "v1", False, True),
    "configmaps": Kind("configmaps", "ConfigMap", "", "v1", True, False),
    "namespaces": Kind("namespaces", "Namespace", "", "v1", False, False),
}

_IMAGECACHES_PREFIX = "/apis/eci.alibabacloud.com/v1/imagecaches"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_KEY = r"(?:[a-z0-9A-Z.\-]+/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?"
_LABEL_VALUE = r"(?:[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?)?"


@dataclass(frozen=True)
class Request:
    """One request the server received, in the order received."""

    method: str
    path: str
    query: dict[str, str]
    kind: str | None  # "imagecaches", "configmaps", "namespaces"; None for other paths
    watch: bool
    at: float = field(default=0.0, compare=False)  # time.monotonic() when it arrived
    body: Any = field(default=None, compare=False)  # the JSON body sent (POST, PUT, PATCH)

    @property
    def resource_version(self) -> str | None:
        """The ``resourceVersion`` asked, or None when the query has none."""
        return self.query.get("resourceVersion")

    @property
    def is_list(self) -> bool:
        """A GET of a collection that is not a watch."""
        return self.method == "GET" and not self.watch and self.kind is not None and \
            self.path.rstrip("/").endswith("/" + self.kind)


class ApiError(Exception):
    """A failure answered with a ``Status`` body (the message, reason and code of the real
    API server)."""

    def __init__(self, code: int, reason: str, message: str, *,
                 details: Obj | None = None, metadata: Obj | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.metadata = metadata or {}
        self.headers = headers or {}

    def status(self) -> Obj:
        """The ``Status`` object of this failure."""
        body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": self.metadata,
                     "status": "Failure", "message": self.message, "reason": self.reason,
                     "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


# The reasons and messages the API server gives each code (k8s.io/apimachinery errors.go).
_STATUS_TEXT: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "forbidden: the server does not allow this request"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Expired", "too old resource version"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: an error on the server has prevented "
          "the request from succeeding"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted"),
}


def status_error(code: int, message: str | None = None, *,
                 retry_after: int | None = None) -> ApiError:
    """An ``ApiError`` with the reason the real server gives ``code`` (and ``Retry-After``)."""
    reason, default = _STATUS_TEXT.get(code, ("", f"the server responded with status {code}"))
    details: Obj | None = None
    headers: dict[str, str] = {}
    if retry_after is not None:
        details = {"retryAfterSeconds": retry_after}
        headers["Retry-After"] = str(retry_after)
    return ApiError(code, reason, message or default, details=details, headers=headers)


def _not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind.qualified} "{name}" not found',
                    details={"name": name, "group": kind.group, "kind": kind.plural})


def _invalid(kind: Kind, name: str, field_path: str, message: str) -> ApiError:
    return ApiError(422, "Invalid", f'{kind.kind} "{name}" is invalid: {field_path}: {message}',
                    details={"name": name, "group": kind.group, "kind": kind.kind,
                             "causes": [{"reason": "FieldValueInvalid", "message": message,
                                         "field": field_path}]})


def _invalid_options(field_path: str, message: str) -> ApiError:
    return ApiError(422, "Invalid",
                    f'ListOptions.meta.k8s.io "" is invalid: {field_path}: Forbidden: {message}',
                    details={"group": "meta.k8s.io", "kind": "ListOptions",
                             "causes": [{"reason": "FieldValueForbidden",
                                         "message": f"Forbidden: {message}",
                                         "field": field_path}]})


def _conflict(kind: Kind, name: str, why: str) -> ApiError:
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {kind.qualified} "{name}": {why}',
                    details={"name": name, "group": kind.group, "kind": kind.plural})


def _expired(message: str, metadata: Obj | None = None) -> ApiError:
    return ApiError(410, "Expired", message, metadata=metadata)


def _too_large(rv: int, current: int) -> ApiError:
    # The server waits a few seconds for a revision it has not reached, then says so.
    return ApiError(504, "Timeout", f"Too large resource version: {rv}, current: {current}",
                    details={"causes": [{"reason": "ResourceVersionTooLarge",
                                         "message": "Too large resource version"}],
                             "retryAfterSeconds": 1})


def _parsed(text: str) -> Obj:
    obj: Obj = json.loads(text)
    return obj


def _clone(value: Any) -> Any:
    # Objects are JSON: a round trip copies them several times faster than copy.deepcopy.
    return json.loads(json.dumps(value))


def _now_timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_rv(text: str) -> int:
    if not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise status_error(400, f"invalid resource version: {text!r}")
    return int(text)


# -- selectors --------------------------------------------------------------------------------

Selector = Callable[[Obj], bool]

_SET_REQUIREMENT = re.compile(rf"^\s*({_LABEL_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_REQUIREMENT = re.compile(rf"^\s*({_LABEL_KEY})\s*(==|=|!=)\s*({_LABEL_VALUE})\s*$")
_EXISTS_REQUIREMENT = re.compile(rf"^\s*(!?)\s*({_LABEL_KEY})\s*$")


def _split_requirements(text: str) -> list[str]:
    # Commas separate requirements, except inside the parentheses of a set.
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str) -> Selector:
    """A ``labelSelector`` query (``a=b,c!=d,e in (f,g),!h``) as a predicate on objects."""
    # Each requirement as (key, operator, values): "in", "notin", "exists", "!exists".
    requirements: list[tuple[str, str, frozenset[str]]] = []
    for part in _split_requirements(text):
        if m := _SET_REQUIREMENT.match(part):
            values = frozenset(v.strip() for v in m.group(4).split(",") if v.strip())
            requirements.append((m.group(1), m.group(3), values))
        elif m := _EQ_REQUIREMENT.match(part):
            op = "notin" if m.group(3) == "!=" else "in"
            requirements.append((m.group(1), op, frozenset([m.group(4)])))
        elif m := _EXISTS_REQUIREMENT.match(part):
            requirements.append((m.group(2), "!exists" if m.group(1) else "exists",
                                 frozenset()))
        else:
            raise status_error(400, f"unable to parse requirement: {part.strip()!r} in "
                                    f"labelSelector {text!r}")

    def holds(labels: dict[str, str], key: str, op: str, values: frozenset[str]) -> bool:
        if op == "exists":
            return key in labels
        if op == "!exists":
            return key not in labels
        return (labels.get(key) in values) == (op == "in")

    def matches(obj: Obj) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(holds(labels, *requirement) for requirement in requirements)

    return matches


def parse_field_selector(text: str) -> Selector:
    """A ``fieldSelector`` query on ``metadata.name`` and ``metadata.namespace``."""
    # Each requirement as (metadata field, wanted equal, value).
    requirements: list[tuple[str, bool, str]] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        m = re.match(r"^([A-Za-z.]+)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise status_error(400, f"invalid field selector: {part!r}")
        path, op, value = m.groups()
        if path not in ("metadata.name", "metadata.namespace"):
            raise status_error(400, f'"{path}" is not a known field selector: only '
                                    '"metadata.name", "metadata.namespace"')
        requirements.append((path.split(".")[1], op != "!=", value))

    def matches(obj: Obj) -> bool:
        meta = obj["metadata"]
        return all((meta.get(attr, "") == value) == equal
                   for attr, equal, value in requirements)

    return matches


# -- patches ----------------------------------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: ``patch`` applied to ``target`` (neither is changed)."""
    if not isinstance(patch, dict):
        return _clone(patch)
    result = _clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise status_error(400, f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(target: Obj, ops: Any) -> Obj:
    """RFC 6902 JSON patch (add, remove, replace, test) applied to a copy of ``target``."""
    if not isinstance(ops, list):
        raise status_error(400, "a JSON patch must be a list of operations")
    doc: Any = _clone(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise status_error(400, f"invalid JSON patch operation: {op!r}")
        parts = _pointer(op["path"])
        if not parts:
            raise status_error(422, "a JSON patch may not replace the whole object")
        parent: Any = doc
        try:
            for part in parts[:-1]:
                parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise status_error(422, f"the JSON patch path {op['path']!r} does not exist") \
                from None
        last = parts[-1]
        try:
            if op["op"] in ("add", "replace"):
                if isinstance(parent, list):
                    index = len(parent) if last == "-" else int(last)
                    if op["op"] == "add":
                        parent.insert(index, _clone(op["value"]))
                    else:
                        parent[index] = _clone(op["value"])
                else:
                    if op["op"] == "replace" and last not in parent:
                        raise KeyError(last)
                    parent[last] = _clone(op["value"])
            elif op["op"] == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif op["op"] == "test":
                here = parent[int(last)] if isinstance(parent, list) else parent[last]
                if here != op["value"]:
                    raise status_error(422, f"the JSON patch test at {op['path']!r} failed")
            else:
                raise status_error(422, f"JSON patch operation {op['op']!r} is not supported")
        except (KeyError, IndexError, ValueError, TypeError):
            raise status_error(422, f"the JSON patch path {op['path']!r} does not exist") \
                from None
    if not isinstance(doc, dict):
        raise status_error(422, "the patched object is not an object")
    return doc


# -- the store --------------------------------------------------------------------------------

Key = tuple[str, str]  # (namespace or "", name): the order of etcd's keys


@dataclass
class _Event:
    rv: int
    kind: str
    type: str  # ADDED, MODIFIED, DELETED
    key: Key
    obj: Obj  # the object after the write (for DELETED: its last state, at this rv)
    prev: Obj | None  # the object before it (None for ADDED)
    text: str  # obj as JSON


@dataclass
class _Watch:
    kind: str
    namespace: str | None
    selects: Selector
    bookmarks: bool
    deadline: float | None  # time.monotonic() at which the stream ends cleanly
    connection: socket.socket
    pending: list[bytes] = field(default_factory=list)
    next_bookmark: float | None = None
    silenced: bool = False
    dropped: bool = False
    open: bool = False  # its response headers are sent: the client holds a stream


def _line(event_type: str, obj: Obj) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _text_line(event_type: str, text: str) -> bytes:
    return f'{{"type":"{event_type}","object":{text}}}\n'.encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@dataclass
class _FailRule:
    status: int
    times: int
    retry_after: int | None
    match: Callable[[Request], bool] | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's backlog of 5 would drop the SYNs of a burst of clients (a second each
    # to come back): the API server's is the kernel's.
    request_queue_size = 1024
    fake: FakeApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up, or a stream this fixture dropped: nothing to report.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._connection_closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class FakeApiServer:
    """The API server of one small cluster, on 127.0.0.1 (see the module's docstring).

    ``history``: events kept for watches and paged lists; older revisions get 410.
    ``bookmark_interval``: seconds between BOOKMARKs on each watch that allows them (None:
    only when ``bookmark()`` is called, and one as a stream times out).
    ``page_token_ttl``: seconds a continue token lives (None: until its revision is compacted).
    ``watch_error_as_event``: a watch from a compacted revision gets 200 and an ERROR event
    (True, as the watch cache answers), or an HTTP 410 (False).
    ``watch_buffer``: events a watch may have waiting to be written; one more and the stream
    is cut, as the API server cuts a watcher too slow to read (None: never).
    ``reset_watch_cache``: started again, the server's watch cache begins at the current
    revision, as a restarted kube-apiserver's (it lists etcd afresh): a watch from an older
    revision gets 410, a client that had seen everything resumes; lists and continue tokens
    (read from etcd) are not affected. False: the history survives a restart.
    """

    def __init__(self, *, history: int = 1000, bookmark_interval: float | None = None,
                 page_token_ttl: float | None = None, watch_error_as_event: bool = True,
                 watch_buffer: int | None = None, reset_watch_cache: bool = False) -> None:
        if history < 0:
            raise ValueError("history must be >= 0")
        if watch_buffer is not None and watch_buffer < 1:
            raise ValueError("watch_buffer must be >= 1")
        self.history = history
        self.watch_buffer = watch_buffer
        self.reset_watch_cache = reset_watch_cache
        self.errors: list[str] = []  # the fixture's own failures (there should be none)
        self.bookmark_interval = bookmark_interval
        self.page_token_ttl = page_token_ttl
        self.watch_error_as_event = watch_error_as_event
        self.requests: list[Request] = []
        self._lock = threading.Condition(threading.RLock())
        self._rv = 0
        self._compacted = 0  # the newest revision no longer in the history
        # The watch cache of a (re)started API server begins at the revision it listed from
        # etcd: watches from before it get 410, lists and continue tokens (etcd's) do not.
        self._watch_floor = 0
        self._events: deque[_Event] = deque()
        self._store: dict[str, dict[Key, Obj]] = {name: {} for name in KINDS}
        self._watches: list[_Watch] = []
        self._batching = 0  # inside batch(): watches are woken at its end
        self._fail_rules: list[_FailRule] = []
        self._error_events: deque[int] = deque()
        self._short_watches = 0  # the next watches that end at once, empty
        self._connections: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # -- life -------------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on 127.0.0.1: a free port the first time, the same port after a stop
        (with ``reset_watch_cache``, watches from before now then get 410)."""
        if self._httpd is not None:
            raise RuntimeError("the fake API server is already started")
        httpd = _Server(("127.0.0.1", self._port or 0), _Handler, bind_and_activate=False)
        httpd.fake = self
        try:
            httpd.server_bind()
            httpd.server_activate()
        except OSError:
            httpd.server_close()
            raise
        with self._lock:
            if self._port is not None and self.reset_watch_cache:
                self._watch_floor = self._rv
        self._port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-apiserver-{self._port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the listener and every open connection (watch streams end abruptly)."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            for watch in self._watches:
                watch.dropped = True
            connections = list(self._connections)
            self._lock.notify_all()
        for conn in connections:
            _shutdown(conn)
        if thread is not None:
            thread.join(timeout=2.0)
        deadline = time.monotonic() + 2.0
        with self._lock:
            while self._connections and time.monotonic() < deadline:
                self._lock.wait(0.05)

    def restart(self) -> None:
        """Stop, then start on the same port; objects and revisions are kept (etcd persists);
        the watch history too, unless ``reset_watch_cache``."""
        self.stop()
        self.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._port is None:
            raise RuntimeError("the fake API server has not been started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        """The port it listens on (kept across restarts)."""
        if self._port is None:
            raise RuntimeError("the fake API server has not been started")
        return self._port

    def api_client(self, **settings: Any) -> kubernetes.client.ApiClient:
        """A new client of the official library configured for this server (no auth);
        ``settings`` are set on its ``Configuration`` first (``retries=False``: urllib3 retries
        nothing, not even a 429 with ``Retry-After``, which by default it sleeps out and
        retries for a GET)."""
        configuration = kubernetes.client.Configuration()
        configuration.host = self.url
        for name, value in settings.items():
            if not hasattr(configuration, name):
                raise AttributeError(f"kubernetes.client.Configuration has no {name!r}")
            setattr(configuration, name, value)
        return kubernetes.client.ApiClient(configuration)

    def __enter__(self) -> FakeApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state --------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The current revision (of the last write, 0 before any)."""
        with self._lock:
            return self._rv

    def create(self, kind: str, obj: Obj) -> Obj:
        """Store a new object (as a controller would, its status included); returns it with
        uid, resourceVersion and creationTimestamp set (a creationTimestamp given is kept
        here, to make old objects; over HTTP the server sets it). An existing name raises
        ``ApiError`` 409 AlreadyExists."""
        with self._lock:
            return _parsed(self._create(_kind(kind), obj, trusted=True))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Writes made inside are one burst: no client sees any of them before the block
        ends, and then all at once (one wake-up and one socket write per watch, not one per
        event); for benchmarks that push many events."""
        with self._lock:
            self._batching += 1
            try:
                yield
            finally:
                self._batching -= 1
                if not self._batching:
                    self._lock.notify_all()

    def patch(self, kind: str, name: str, patch: Obj, namespace: str | None = None) -> Obj:
        """Apply a JSON merge patch (RFC 7386) to the stored object, as ``update`` does."""
        with self._lock:
            k = _kind(kind)
            current = self._store[kind].get(_key(k, name, namespace))
            if current is None:
                raise KeyError(f"{kind} {_show(_key(k, name, namespace))} does not exist")
            return _parsed(self._replace(k, current, merge_patch(current, patch)))

    def update(self, kind: str, obj: Obj) -> Obj:
        """Replace the object of that name (and namespace), whatever its resourceVersion;
        keeps its uid and creationTimestamp, bumps its resourceVersion."""
        with self._lock:
            k = _kind(kind)
            key = _key_of(k, obj)
            current = self._store[kind].get(key)
            if current is None:
                raise KeyError(f"{kind} {_show(key)} does not exist")
            return _parsed(self._replace(k, current, obj))

    def delete(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        """Remove an object; returns its last state (at the revision of the delete)."""
        with self._lock:
            k = _kind(kind)
            key = _key(k, name, namespace)
            if key not in self._store[kind]:
                raise KeyError(f"{kind} {_show(key)} does not exist")
            return _parsed(self._delete(k, key))

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """The stored object, or None."""
        with self._lock:
            k = _kind(kind)
            found = self._store[kind].get(_key(k, name, namespace))
            return _clone(found) if found is not None else None

    def objects(self, kind: str) -> list[Obj]:
        """The current objects of a kind, in key order (what a client should converge to)."""
        _kind(kind)
        with self._lock:
            return [_clone(self._store[kind][key]) for key in sorted(self._store[kind])]

    def _create(self, kind: Kind, obj: Obj, *, trusted: bool, owned: bool = False) -> str:
        # trusted: written to the store from Python (a controller's write, status and
        # creationTimestamp as given); else a client's POST, as the API server takes it.
        # owned: obj is this module's own, made for this write: stored as it is, not copied.
        stored = _as_object(kind, obj, copy=not owned)
        meta = stored.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid(kind, "", "metadata.name", "Required value: name or generateName "
                                                      "is required")
        pattern = _DNS_LABEL if kind.plural == "namespaces" else _DNS_SUBDOMAIN
        if len(name) > 253 or not pattern.match(name):
            raise _invalid(kind, name, "metadata.name",
                           f'Invalid value: "{name}": a lowercase RFC 1123 name must consist '
                           "of lower case alphanumeric characters, '-' or '.'")
        if kind.namespaced:
            meta["namespace"] = meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        key = _key_of(kind, stored)
        if key in self._store[kind.plural]:
            raise ApiError(409, "AlreadyExists", f'{kind.qualified} "{name}" already exists',
                           details={"name": name, "group": kind.group, "kind": kind.plural})
        if kind.custom and not trusted:
            stored.pop("status", None)  # the status subresource owns it
        for server_field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(server_field, None)
        meta["uid"] = str(uuid.uuid4())
        if not (trusted and meta.get("creationTimestamp")):
            meta["creationTimestamp"] = _now_timestamp()
        if kind.custom:
            meta["generation"] = 1
        if kind.plural == "namespaces":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            stored.setdefault("spec", {"finalizers": ["kubernetes"]})
            stored["status"] = {"phase": "Active"}
        return self._write(kind, "ADDED", key, stored, None)

    def _replace(self, kind: Kind, current: Obj, new: Obj, *, keep_status: bool = True,
                 only_status: bool = False, owned: bool = False) -> str:
        stored = _as_object(kind, new, copy=not owned)
        meta = stored.setdefault("metadata", {})
        old_meta = current["metadata"]
        for kept in ("name", "namespace", "uid", "creationTimestamp", "generateName"):
            if kept in old_meta:
                meta[kept] = old_meta[kept]
            else:
                meta.pop(kept, None)
        if only_status:
            stored = dict(_clone(current), status=stored.get("status"))
            meta = stored["metadata"]
        elif kind.custom and not keep_status:
            if "status" in current:
                stored["status"] = _clone(current["status"])
            else:
                stored.pop("status", None)
        if kind.plural == "namespaces":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        if kind.custom:
            generation = old_meta.get("generation", 1)
            if _spec_of(stored) != _spec_of(current):
                generation += 1
            meta["generation"] = generation
        return self._write(kind, "MODIFIED", _key_of(kind, stored), stored, current)

    def _delete(self, kind: Kind, key: Key) -> str:
        current = self._store[kind.plural][key]
        # Stored objects are never changed in place: the delete's copy shares their parts.
        last = dict(current, metadata=dict(current["metadata"]))
        return self._write(kind, "DELETED", key, last, current)

    def _write(self, kind: Kind, event_type: str, key: Key, obj: Obj, prev: Obj | None) -> str:
        """Store one write at the next revision, queue it to the watches; its JSON text."""
        # One revision per write, shared by every kind, as etcd's.
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        if event_type == "DELETED":
            del self._store[kind.plural][key]
        else:
            self._store[kind.plural][key] = obj
        text = json.dumps(obj, separators=(",", ":"))
        event = _Event(self._rv, kind.plural, event_type, key, obj, prev, text)
        self._events.append(event)
        while len(self._events) > self.history:
            self._compacted = self._events.popleft().rv
        line: bytes | None = None
        for watch in self._watches:
            if watch.kind != kind.plural or watch.dropped:
                continue
            seen = self._event_for(watch, event)
            if seen is None:
                continue
            line = line if line is not None and seen == event_type else \
                _text_line(seen, text)
            watch.pending.append(line)
            if self.watch_buffer is not None and len(watch.pending) > self.watch_buffer:
                # "Forcing watcher close due to unresponsiveness" (the cacher's words).
                watch.dropped = True
                _shutdown(watch.connection)
        if not self._batching:
            self._lock.notify_all()
        return text

    @staticmethod
    def _event_for(watch: _Watch, event: _Event) -> str | None:
        """The event a watch with selectors sees: an object that starts (or stops) matching
        is ADDED (or DELETED) for it, as the API server's filtered watch does."""
        def seen(obj: Obj | None) -> bool:
            if obj is None:
                return False
            if watch.namespace is not None and obj["metadata"].get("namespace") != \
                    watch.namespace:
                return False
            return watch.selects(obj)
        now = event.type != "DELETED" and seen(event.obj)
        before = seen(event.prev)
        if event.type == "DELETED":
            return "DELETED" if before else None
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        if before:
            # It left the selection: the watcher sees it deleted, in its new state.
            return "DELETED"
        return None

    def _state_at(self, kind: str, rv: int) -> dict[Key, Obj]:
        """The objects of a kind as they were at revision ``rv`` (undoing the later events)."""
        if rv < self._compacted:
            raise _expired(f"too old resource version: {rv} ({self._compacted})")
        state = dict(self._store[kind])
        for event in reversed(self._events):
            if event.rv <= rv:
                break
            if event.kind != kind:
                continue
            if event.prev is None:
                state.pop(event.key, None)
            else:
                state[event.key] = event.prev
        return state

    def churn(self, events: int, *, names: int = 300, images: int = 5,
              rate: float | None = None, seed: int = 0, stamp: bool = False) -> int:
        """Write ``events`` random creates, updates and deletes of ImageCaches named
        ``churn-00000``... (``names`` of them, ``images`` images each), flat out or at ``rate``
        events a second; with ``stamp``, each object carries the time it was written
        (``fastmatch.io/written-at``, seconds since the epoch) for a client to measure its
        lag. Returns the revision after the last write."""
        rng = random.Random(seed)
        pool = [f"registry.example.com/team/app{n}:v{v}" for n in range(60) for v in range(3)]
        pool_names = [f"churn-{n:05d}" for n in range(names)]
        start = time.monotonic()
        done = 0
        while done < events:
            due = events if rate is None else min(events, int((time.monotonic() - start) *
                                                              rate) + 1)
            if due <= done:
                time.sleep(0.0005)
                continue
            with self.batch():
                for _ in range(min(due - done, 256)):
                    self._churn_one(rng, pool, pool_names, images, stamp)
                    done += 1
        return self.resource_version

    def _churn_one(self, rng: random.Random, pool: list[str], names: list[str], images: int,
                   stamp: bool) -> None:
        kind = KINDS["imagecaches"]
        name = rng.choice(names)
        current = self._store["imagecaches"].get(("", name))
        if current is not None and rng.random() < 0.2:
            self._delete(kind, ("", name))
            return
        if current is None or rng.random() < 0.3:
            refs = rng.sample(pool, images)
        else:
            refs = list(current["spec"]["images"])
        obj = imagecache(name, refs, phase=rng.choice(["Ready"] * 7 + ["Creating", "Failed"]),
                         cache_id=f"imc-{name}")
        if stamp:
            obj["metadata"]["annotations"] = {"fastmatch.io/written-at": f"{time.time():.6f}"}
        if current is None:
            self._create(kind, obj, trusted=True, owned=True)
        else:
            self._replace(kind, current, obj, owned=True)

    # -- faults -------------------------------------------------------------------------------

    def compact(self, keep: int = 0) -> None:
        """Drop the history but its last ``keep`` events: watches from older revisions, and
        continue tokens of older lists, now get 410."""
        with self._lock:
            while len(self._events) > keep:
                self._compacted = self._events.popleft().rv
            if not self._events:
                self._compacted = self._rv

    def drop_watches(self) -> None:
        """Close every open watch stream at once, without its final chunk."""
        with self._lock:
            for watch in self._watches:
                watch.dropped = True
                _shutdown(watch.connection)
            self._lock.notify_all()
        self._wait_watches_gone()

    def silence_watches(self) -> None:
        """The open streams stay open but send nothing (no event, no bookmark, no timeout)
        until they are dropped or the server stops; later watches are not silenced."""
        with self._lock:
            for watch in self._watches:
                watch.silenced = True

    def bookmark(self) -> None:
        """Send a BOOKMARK now on every open watch that allows them."""
        with self._lock:
            for watch in self._watches:
                if watch.bookmarks and not watch.dropped:
                    watch.pending.append(self._bookmark_line(watch.kind))
            self._lock.notify_all()

    def fail_next(self, status: int, *, times: int = 1, retry_after: int | None = None,
                  match: Callable[[Request], bool] | None = None) -> None:
        """Answer the next ``times`` requests that ``match`` (all, by default) with ``status``
        and its ``Status`` body (and ``Retry-After`` when given), as the API server does."""
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._fail_rules.append(_FailRule(status, times, retry_after, match))

    def end_next_watches(self, times: int = 1) -> None:
        """The next ``times`` watches get 200 and end at once, cleanly and empty (client-go's
        "very short watch": a proxy's timeout, a server going away)."""
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._short_watches += times

    def error_event_next_watch(self, code: int = 410) -> None:
        """The next watch gets 200, one ERROR event (a Status of this code), then its end."""
        with self._lock:
            self._error_events.append(code)

    # -- what the client asked ----------------------------------------------------------------

    def wait_for(self, predicate: Callable[[list[Request]], bool],
                 timeout: float = 5.0) -> bool:
        """Wait until ``predicate(requests)`` holds; False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                if predicate(list(self.requests)):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))

    def wait_watchers(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until exactly ``count`` watch streams are open; False after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._open_watches() != count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))
            return True

    @property
    def watchers(self) -> int:
        """How many watch streams are open now (their headers sent, not yet ended)."""
        with self._lock:
            return self._open_watches()

    def _open_watches(self) -> int:
        return sum(1 for watch in self._watches if watch.open)

    def _wait_watches_gone(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while any(w.dropped for w in self._watches) and time.monotonic() < deadline:
                self._lock.wait(0.02)

    # -- HTTP ---------------------------------------------------------------------------------

    def _connection_opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _connection_closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)
            self._lock.notify_all()

    def _handle(self, handler: _Handler) -> None:
        url = urlsplit(handler.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        path = url.path
        route = _route(path)
        watch = query.get("watch", "") in ("true", "1")
        body = b""
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            body = handler.rfile.read(length)
        sent: Any = None
        if body:
            try:
                sent = json.loads(body)
            except ValueError:
                sent = body.decode(errors="replace")
        request = Request(handler.command, path, query, route.kind.plural if route else None,
                          watch and handler.command == "GET", time.monotonic(), sent)
        with self._lock:
            self.requests.append(request)
            self._lock.notify_all()
            rule = self._take_fail_rule(request)
        try:
            if rule is not None:
                raise status_error(rule.status, retry_after=rule.retry_after)
            if handler.command == "GET" and path.rstrip("/") in _DISCOVERY:
                self._send_json(handler, 200, _DISCOVERY[path.rstrip("/")])
                return
            if route is None:
                raise status_error(404)
            if request.watch:
                if route.subresource:
                    raise status_error(404)
                self._serve_watch(handler, route, query)
                return
            media = handler.headers.get("Content-Type", "").split(";")[0].strip()
            # No Content-Type is JSON, the first the server accepts (the official client sends
            # none on a create).
            if handler.command in ("POST", "PUT") and media not in ("", "application/json"):
                raise ApiError(415, "UnsupportedMediaType",
                               f'the body of the request was in an unknown format - accepted '
                               f'media types include: application/json, application/yaml, '
                               f'application/vnd.kubernetes.protobuf (got "{media}")')
            code, answer = self._serve(handler.command, route, query, body,
                                       handler.headers.get("Content-Type", ""))
            self._send_json(handler, code, answer)
        except ApiError as error:
            self._send_json(handler, error.code, error.status(), error.headers)
        except OSError:
            handler.close_connection = True
        except Exception as error:
            # A bug of this fixture, not the client's: answered as the API server's internal
            # error, and kept for the test to see (the apiserver fixture fails on it).
            with self._lock:
                self.errors.append(f"{request.method} {handler.path}: {error!r}")
            with contextlib.suppress(OSError):
                self._send_json(handler, 500, status_error(500, f"fixture error: {error!r}")
                                .status())

    def _take_fail_rule(self, request: Request) -> _FailRule | None:
        for rule in self._fail_rules:
            if rule.match is None or rule.match(request):
                rule.times -= 1
                if rule.times == 0:
                    self._fail_rules.remove(rule)
                return rule
        return None

    @staticmethod
    def _send_json(handler: _Handler, code: int, body: Obj,
                   headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Cache-Control", "no-cache, private")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _serve(self, method: str, route: _Route, query: dict[str, str], body: bytes,
               content_type: str) -> tuple[int, Obj]:
        kind = route.kind
        if route.name is None:
            if method == "GET":
                if route.subresource:
                    raise status_error(404)
                return 200, self._list(route, query)
            if method == "POST" and (route.namespace is not None or not kind.namespaced):
                obj = _json_body(body)
                _check_type(kind, obj)
                if kind.namespaced:
                    given = obj.get("metadata", {}).get("namespace")
                    if given and given != route.namespace:
                        raise status_error(400, "the namespace of the provided object does not "
                                                "match the namespace sent on the request")
                    obj.setdefault("metadata", {})["namespace"] = route.namespace
                with self._lock:
                    if query.get("dryRun") == "All":
                        if _key_of(kind, obj) in self._store[kind.plural]:
                            raise ApiError(409, "AlreadyExists", f'{kind.qualified} '
                                           f'"{obj["metadata"].get("name")}" already exists')
                        return 201, _as_object(kind, obj)
                    return 201, json.loads(self._create(kind, obj, trusted=False))
            raise status_error(405)
        key = (route.namespace or "", route.name)
        with self._lock:
            current = self._store[kind.plural].get(key)
            if current is None:
                raise _not_found(kind, route.name)
            if route.subresource not in (None, "status") or (
                    route.subresource == "status" and not kind.custom):
                raise status_error(404)
            if method == "GET":
                return 200, _clone(current)
            if method == "DELETE":
                self._check_preconditions(kind, current, body)
                last = json.loads(self._delete(kind, key))
                if kind.custom or kind.plural == "namespaces":
                    return 200, last
                return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                             "status": "Success",
                             "details": {"name": route.name, "kind": kind.plural,
                                         "uid": last["metadata"]["uid"]}}
            if method == "PUT":
                obj = _json_body(body)
                _check_type(kind, obj)
                name = obj.get("metadata", {}).get("name")
                if name != route.name:
                    raise status_error(400, f"the name of the object ({name}) does not match "
                                            f"the name on the URL ({route.name})")
            elif method == "PATCH":
                patch = _json_body(body, allow_list=True)
                media = content_type.split(";")[0].strip()
                if media == "application/json-patch+json":
                    obj = json_patch(current, patch)
                elif media == "application/merge-patch+json" or (
                        media == "application/strategic-merge-patch+json" and not kind.custom):
                    if not isinstance(patch, dict):
                        raise status_error(400, "a merge patch must be a JSON object")
                    obj = merge_patch(current, patch)
                    if "resourceVersion" not in (patch.get("metadata") or {}):
                        # A patch without a resourceVersion applies to the current one.
                        obj["metadata"]["resourceVersion"] = current["metadata"][
                            "resourceVersion"]
                else:
                    raise ApiError(415, "UnsupportedMediaType",
                                   f"the body of the request was in an unknown format - "
                                   f"accepted media types include: application/json-patch+json, "
                                   f"application/merge-patch+json, application/apply-patch+yaml"
                                   f" (got {media!r})")
            else:
                raise status_error(405)
            given_rv = obj.get("metadata", {}).get("resourceVersion")
            if given_rv in (None, ""):
                if kind.custom:
                    raise _invalid(kind, route.name, "metadata.resourceVersion",
                                   "Invalid value: 0x0: must be specified for an update")
            elif given_rv != current["metadata"]["resourceVersion"]:
                raise _conflict(kind, route.name, "the object has been modified; please apply "
                                "your changes to the latest version and try again")
            if query.get("dryRun") == "All":
                return 200, obj
            return 200, json.loads(self._replace(kind, current, obj,
                                                 keep_status=not kind.custom,
                                                 only_status=route.subresource == "status"))

    @staticmethod
    def _check_preconditions(kind: Kind, current: Obj, body: bytes) -> None:
        if not body.strip():
            return
        options = _json_body(body)
        pre = options.get("preconditions") or {}
        meta = current["metadata"]
        name = meta["name"]
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise _conflict(kind, name, f"Precondition failed: UID in precondition: "
                                        f"{pre['uid']}, UID in object meta: {meta['uid']}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise _conflict(kind, name, "Precondition failed: ResourceVersion in precondition: "
                                        f"{pre['resourceVersion']}, ResourceVersion in object "
                                        f"meta: {meta['resourceVersion']}")

    def _selection(self, route: _Route, query: dict[str, str]) -> Selector:
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(query.get("fieldSelector", ""))
        namespace, name = route.namespace, route.name

        def selects(obj: Obj) -> bool:
            meta = obj["metadata"]
            if namespace is not None and meta.get("namespace") != namespace:
                return False
            if name is not None and meta.get("name") != name:
                return False  # a watch of one object: GET .../{name}?watch=true
            return labels(obj) and fields(obj)
        return selects

    def _list(self, route: _Route, query: dict[str, str]) -> Obj:
        kind = route.kind
        selects = self._selection(route, query)
        rv_text = query.get("resourceVersion", "")
        match = query.get("resourceVersionMatch", "")
        token = query.get("continue", "")
        limit_text = query.get("limit", "")
        if match:
            if not rv_text:
                raise _invalid_options("resourceVersionMatch", "resourceVersionMatch is "
                                       "forbidden unless resourceVersion is provided")
            if token:
                raise _invalid_options("resourceVersionMatch", "resourceVersionMatch is "
                                       "forbidden when continue is provided")
            if match not in ("Exact", "NotOlderThan"):
                raise ApiError(422, "Invalid", f'ListOptions.meta.k8s.io "" is invalid: '
                               f'resourceVersionMatch: Unsupported value: "{match}": supported '
                               'values: "Exact", "NotOlderThan", ""')
            if match == "Exact" and rv_text == "0":
                raise _invalid_options("resourceVersionMatch", 'resourceVersionMatch "exact" '
                                       'is forbidden for resourceVersion "0"')
        if "sendInitialEvents" in query:
            raise _invalid_options("sendInitialEvents", "sendInitialEvents is forbidden for "
                                                        "list")
        limit = 0
        if limit_text:
            if not limit_text.lstrip("-").isdigit():
                raise status_error(400, f"invalid limit: {limit_text!r}")
            limit = max(int(limit_text), 0)
        with self._lock:
            start: Key | None = None
            issued = time.time()
            if token:
                if rv_text not in ("", "0"):
                    raise status_error(400, "specifying resource version is not allowed when "
                                            "using continue")
                rv, start, issued = _decode_continue(token)
                if rv == -1:
                    # The token of an expired one: the rest, read at the latest revision.
                    rv, state = self._rv, self._store[kind.plural]
                    issued = time.time()
                else:
                    expired = rv < self._compacted or (
                        self.page_token_ttl is not None and time.time() - issued >
                        self.page_token_ttl)
                    if expired:
                        # As etcd3's handleCompactedErrorForPaging: 410, and a token (at
                        # revision -1) to go on with, inconsistently.
                        raise _expired(
                            "The provided continue parameter is too old to display a "
                            "consistent list result. You can start a new list without the "
                            "continue parameter, or use the continue token in this response "
                            "to retrieve the remainder of the results. Continuing with the "
                            "provided token results in an inconsistent list - objects that "
                            "were created, modified, or deleted between the time the first "
                            "chunk was returned and now may show up in the list.",
                            {"continue": _encode_continue(-1, start, time.time())})
                    state = self._state_at(kind.plural, rv)
            elif rv_text in ("", "0"):
                rv, state = self._rv, self._store[kind.plural]
                if rv_text == "0":
                    # "Any" is served from the watch cache, which ignores limit: one page of
                    # everything (kubernetes#70735).
                    limit = 0
            else:
                rv = _parse_rv(rv_text)
                if rv > self._rv:
                    raise _too_large(rv, self._rv)
                exact = match == "Exact" or (not match and limit > 0)
                if exact:
                    try:
                        state = self._state_at(kind.plural, rv)
                    except ApiError:
                        raise _expired("The resourceVersion for the provided list is too old.") \
                            from None
                else:
                    rv, state = self._rv, self._store[kind.plural]
            keys = sorted(k for k in state if start is None or k >= start)
            items: list[Obj] = []
            next_key: Key | None = None
            matched_after = 0
            for k in keys:
                obj = state[k]
                if not selects(obj):
                    continue
                if limit and len(items) >= limit:
                    if next_key is None:
                        next_key = k
                    matched_after += 1
                    continue
                items.append(obj)
            items = _clone(items)
        if not kind.custom:
            # Lists of built-in types carry the type on the list alone, as the server's encoder.
            for item in items:
                item.pop("kind", None)
                item.pop("apiVersion", None)
        metadata: Obj = {"resourceVersion": str(rv)}
        if next_key is not None:
            metadata["continue"] = _encode_continue(rv, next_key, issued)
            if not query.get("labelSelector") and not query.get("fieldSelector"):
                metadata["remainingItemCount"] = matched_after
        return {"kind": f"{kind.kind}List", "apiVersion": kind.api_version,
                "metadata": metadata, "items": items}

    def _bookmark_line(self, kind: str, annotations: dict[str, str] | None = None) -> bytes:
        k = KINDS[kind]
        meta: Obj = {"resourceVersion": str(self._rv), "creationTimestamp": None}
        if annotations:
            meta["annotations"] = annotations
        return _line("BOOKMARK", {"kind": k.kind, "apiVersion": k.api_version, "metadata": meta})

    def _open_watch(self, handler: _Handler, route: _Route, query: dict[str, str]) -> _Watch:
        """Check a watch request and register it with what it must be sent first."""
        selects = self._selection(route, query)
        rv_text = query.get("resourceVersion", "")
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        initial = query.get("sendInitialEvents")
        match = query.get("resourceVersionMatch", "")
        if query.get("continue"):
            raise _invalid_options("continue", "continue is forbidden for watch")
        if initial is not None:
            if match != "NotOlderThan":
                raise _invalid_options("resourceVersionMatch", "sendInitialEvents requires "
                                       "setting resourceVersionMatch to NotOlderThan")
            if initial in ("true", "1") and not bookmarks:
                raise _invalid_options("allowWatchBookmarks", "allowWatchBookmarks must be "
                                       "true when sendInitialEvents is set")
        elif match:
            raise _invalid_options("resourceVersionMatch", "resourceVersionMatch is forbidden "
                                   "for watch unless sendInitialEvents is provided")
        timeout: float | None = None
        if query.get("timeoutSeconds"):
            if not query["timeoutSeconds"].isdigit():
                raise status_error(400, f"invalid timeoutSeconds: {query['timeoutSeconds']!r}")
            timeout = float(query["timeoutSeconds"])
        now = time.monotonic()
        watch = _Watch(route.kind.plural, route.namespace, selects, bookmarks,
                       now + timeout if timeout else None, handler.connection)
        if bookmarks and self.bookmark_interval:
            watch.next_bookmark = now + self.bookmark_interval
        with self._lock:
            if initial is not None or rv_text in ("", "0"):
                if rv_text not in ("", "0") and _parse_rv(rv_text) > self._rv:
                    raise _too_large(_parse_rv(rv_text), self._rv)
                if initial is None or initial in ("true", "1"):
                    # From now (or from any state): the current objects as synthetic ADDED
                    # events, in key order, not in revision order.
                    for key in sorted(self._store[watch.kind]):
                        obj = self._store[watch.kind][key]
                        if selects(obj):
                            watch.pending.append(_line("ADDED", obj))
                if initial in ("true", "1"):
                    watch.pending.append(self._bookmark_line(
                        watch.kind, {"k8s.io/initial-events-end": "true"}))
            else:
                rv = _parse_rv(rv_text)
                oldest = max(self._compacted, self._watch_floor)
                if rv < oldest:
                    raise _expired(f"too old resource version: {rv} ({oldest})")
                for event in self._events:
                    if event.rv > rv and event.kind == watch.kind:
                        seen = self._event_for(watch, event)
                        if seen is not None:
                            watch.pending.append(_text_line(seen, event.text))
            self._watches.append(watch)
            self._lock.notify_all()
        return watch

    def _serve_watch(self, handler: _Handler, route: _Route, query: dict[str, str]) -> None:
        with self._lock:
            error_code = self._error_events.popleft() if self._error_events else None
            short = error_code is None and self._short_watches > 0
            if short:
                self._short_watches -= 1
        if short:
            self._start_stream(handler)
            handler.wfile.write(b"0\r\n\r\n")
            return
        watch: _Watch | None = None
        try:
            try:
                if error_code is not None:
                    raise status_error(error_code) if error_code != 410 else \
                        _expired(f"too old resource version: {query.get('resourceVersion')}")
                watch = self._open_watch(handler, route, query)
            except ApiError as error:
                if error.code == 410 and not self.watch_error_as_event and error_code is None:
                    raise
                if error.code in (400, 422) and error_code is None:
                    raise
                self._start_stream(handler)
                handler.wfile.write(_chunk(_line("ERROR", error.status())) + b"0\r\n\r\n")
                return
            self._start_stream(handler)
            with self._lock:
                watch.open = True
                self._lock.notify_all()
            self._pump(handler, watch)
        finally:
            if watch is not None:
                with self._lock:
                    self._watches.remove(watch)
                    self._lock.notify_all()

    @staticmethod
    def _start_stream(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Cache-Control", "no-cache, private")
        handler.end_headers()

    def _pump(self, handler: _Handler, watch: _Watch) -> None:
        """Write the watch's events as they come, until it times out, is dropped, or the
        client hangs up."""
        while True:
            batch: list[bytes] = []
            ending = False
            with self._lock:
                if watch.dropped:
                    handler.close_connection = True
                    _shutdown(handler.connection)
                    return
                now = time.monotonic()
                if watch.silenced:
                    pass
                elif watch.pending:
                    batch, watch.pending = watch.pending, []
                elif watch.deadline is not None and now >= watch.deadline:
                    # The server's own last bookmark lets the client resume from here.
                    batch = [self._bookmark_line(watch.kind)] if watch.bookmarks else []
                    ending = True
                elif watch.next_bookmark is not None and now >= watch.next_bookmark:
                    batch = [self._bookmark_line(watch.kind)]
                    watch.next_bookmark = now + (self.bookmark_interval or 0)
                if not batch and not ending:
                    wake = [] if watch.silenced else \
                        [t for t in (watch.deadline, watch.next_bookmark) if t is not None]
                    self._lock.wait(max(min([*wake, now + 0.1]) - now, 0))
            if not batch and not ending:
                # As the API server ends a watch whose client went away, not at its timeout.
                if _peer_closed(handler.connection):
                    handler.close_connection = True
                    return
                continue
            data = b"".join(_chunk(line) for line in batch)
            if ending:
                data += b"0\r\n\r\n"
            try:
                handler.wfile.write(data)
            except OSError:
                handler.close_connection = True
                return
            if ending:
                return


# -- routing and small helpers ----------------------------------------------------------------

def _resource(kind: Kind, subresource: str = "") -> Obj:
    verbs = ["get", "patch", "update"] if subresource else \
        ["create", "delete", "get", "list", "patch", "update", "watch"]
    entry: Obj = {"name": kind.plural + (f"/{subresource}" if subresource else ""),
                  "singularName": "" if subresource else kind.kind.lower(),
                  "namespaced": kind.namespaced, "kind": kind.kind, "verbs": verbs}
    if kind.plural == "imagecaches" and not subresource:
        entry["shortNames"] = ["ic"]
    return entry


# What discovery (the dynamic client, kubectl) reads first: the served kinds and no more.
_DISCOVERY: dict[str, Obj] = {
    "/version": {"major": "1", "minor": "35", "gitVersion": "v1.35.0-fastmatch-fixture",
                 "platform": "linux/amd64"},
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                             "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
        "name": "eci.alibabacloud.com",
        "versions": [{"groupVersion": "eci.alibabacloud.com/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "eci.alibabacloud.com/v1", "version": "v1"}}]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1",
                "resources": [_resource(KINDS["configmaps"]), _resource(KINDS["namespaces"])]},
    "/apis/eci.alibabacloud.com/v1": {
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "eci.alibabacloud.com/v1",
        "resources": [_resource(KINDS["imagecaches"]),
                      _resource(KINDS["imagecaches"], "status")]},
}


@dataclass(frozen=True)
class _Route:
    kind: Kind
    namespace: str | None  # for namespaced kinds: the path's namespace (None: all namespaces)
    name: str | None
    subresource: str | None


def _route(path: str) -> _Route | None:
    parts = [p for p in path.split("/") if p]
    if path.startswith(_IMAGECACHES_PREFIX + "/") or path == _IMAGECACHES_PREFIX:
        rest = parts[4:]
        if len(rest) > 2:
            return None
        return _Route(KINDS["imagecaches"], None, rest[0] if rest else None,
                      rest[1] if len(rest) > 1 else None)
    if parts[:2] != ["api", "v1"]:
        return None
    rest = parts[2:]
    if rest == ["configmaps"]:
        return _Route(KINDS["configmaps"], None, None, None)
    if rest[:1] == ["namespaces"]:
        if len(rest) <= 2:
            return _Route(KINDS["namespaces"], None, rest[1] if len(rest) == 2 else None, None)
        if rest[2] == "configmaps" and len(rest) <= 4:
            return _Route(KINDS["configmaps"], rest[1], rest[3] if len(rest) == 4 else None,
                          None)
    return None


def _kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown kind {name!r}: one of {', '.join(KINDS)}") from None


def _key_of(kind: Kind, obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return _key(kind, meta.get("name") or "", meta.get("namespace"))


def _key(kind: Kind, name: str, namespace: str | None) -> Key:
    # A namespaced object named without a namespace is in "default", as kubectl's.
    return ((namespace or "default") if kind.namespaced else "", name)


def _show(key: Key) -> str:
    return f"{key[0]}/{key[1]}" if key[0] else key[1]


def _spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _as_object(kind: Kind, obj: Obj, *, copy: bool = True) -> Obj:
    stored: Obj = _clone(obj) if copy else obj
    stored["apiVersion"] = kind.api_version
    stored["kind"] = kind.kind
    stored["metadata"] = dict(stored.get("metadata") or {})
    return stored


def _check_type(kind: Kind, obj: Obj) -> None:
    given = obj.get("apiVersion")
    if given and given != kind.api_version:
        raise status_error(400, f"the API version in the data ({given}) does not match the "
                                f"expected API version ({kind.api_version})")
    if obj.get("kind") and obj["kind"] != kind.kind:
        raise status_error(400, f"the kind in the data ({obj['kind']}) does not match the "
                                f"expected kind ({kind.kind})")


def _json_body(body: bytes, *, allow_list: bool = False) -> Any:
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        raise status_error(400, f"the body of the request is not JSON: {error}") from None
    if not isinstance(data, dict) and not (allow_list and isinstance(data, list)):
        raise status_error(400, "the body of the request must be a JSON object")
    return data


def _encode_continue(rv: int, start: Key, issued: float) -> str:
    # The shape of the API server's token (an etcd key to start from, at a revision); the
    # issue time is this fixture's, for page_token_ttl.
    data = {"v": "meta.k8s.io/v1", "rv": rv, "start": _show(start) + "\x00",
            "issued": round(issued, 3)}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, Key, float]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        start = str(data["start"]).rstrip("\x00")
        namespace, _, name = start.rpartition("/")
        return int(data["rv"]), (namespace, name), float(data["issued"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise status_error(400, "continue key is not valid: invalid continue token") from None


def _peer_closed(conn: socket.socket) -> bool:
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer
        conn.shutdown(socket.SHUT_RDWR)


def imagecache(name: str, images: Iterable[str] = ("nginx:1.25",), *, phase: str = "Ready",
               cache_id: str | None = None, labels: dict[str, str] | None = None,
               size_gib: int | None = None) -> Obj:
    """An ImageCache object (SPEC §6) to hand to ``create``/``update``."""
    obj: Obj = {"apiVersion": "eci.alibabacloud.com/v1", "kind": "ImageCache",
                "metadata": {"name": name}, "spec": {"images": list(images)},
                "status": {"phase": phase}}
    if labels:
        obj["metadata"]["labels"] = dict(labels)
    if size_gib is not None:
        obj["spec"]["imageCacheSize"] = size_gib
    if cache_id is not None:
        obj["status"]["imageCacheId"] = cache_id
    return obj


def configmap(name: str, namespace: str = "default", data: dict[str, str] | None = None) -> Obj:
    """A ConfigMap object to hand to ``create``/``update``."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}, "data": dict(data or {})}


def namespace(name: str, labels: dict[str, str] | None = None) -> Obj:
    """A Namespace object to hand to ``create``/``update``."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": dict(labels or {})}}


def served(server: FakeApiServer) -> Iterator[FakeApiServer]:
    """Start ``server``, yield it, and always stop it (the body of the pytest fixture)."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- in a process of its own ------------------------------------------------------------------

# What a RemoteApiServer may ask of the server in its child process.
_REMOTE_CALLS = frozenset({
    "create", "update", "delete", "patch", "get", "objects", "churn", "compact",
    "drop_watches", "silence_watches", "bookmark", "error_event_next_watch",
    "end_next_watches", "restart",
    "wait_watchers"})


class RemoteApiServer:
    """A ``FakeApiServer`` in a child process, as a real API server is: its writes, JSON and
    sockets do not share the client's GIL, so a benchmark measures the client alone.

    ``options`` are ``FakeApiServer``'s. Driven by ``call`` (one JSON line each way), with
    the methods that make sense across processes (``fail_next`` takes no ``match``; the
    request log stays in the child)."""

    def __init__(self, *, timeout: float = 30.0, **options: Any) -> None:
        self._timeout = timeout
        self._proc = subprocess.Popen([sys.executable, __file__, json.dumps(options)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            hello = self._answer()
        except BaseException:
            self.close()
            raise
        self.url: str = hello["url"]

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(b"")  # the child is gone

    def _answer(self) -> Any:
        try:
            line = self._lines.get(timeout=self._timeout)
        except queue.Empty:
            raise TimeoutError(f"the fake API server process said nothing in "
                               f"{self._timeout} s") from None
        if not line:
            raise RuntimeError(f"the fake API server process ended ({self._proc.poll()})")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise RuntimeError(f"the fake API server process failed: {answer.get('error')}")
        return answer.get("result")

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` of the server in the child; its JSON result."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"call": method, "args": args,
                                           "kwargs": kwargs}).encode() + b"\n")
        self._proc.stdin.flush()
        return self._answer()

    def api_client(self, **settings: Any) -> kubernetes.client.ApiClient:
        """A client of the official library for the child's server (as FakeApiServer's)."""
        configuration = kubernetes.client.Configuration()
        configuration.host = self.url
        for name, value in settings.items():
            setattr(configuration, name, value)
        return kubernetes.client.ApiClient(configuration)

    def churn(self, events: int, **kwargs: Any) -> int:
        """``FakeApiServer.churn`` in the child; the revision after the last write."""
        result: int = self.call("churn", events, **kwargs)
        return result

    def objects(self, kind: str) -> list[Obj]:
        """The child's current objects of a kind."""
        result: list[Obj] = self.call("objects", kind)
        return result

    @property
    def resource_version(self) -> int:
        """The child's current revision."""
        result: int = self.call("resource_version")
        return result

    def close(self) -> None:
        """Stop the child (at once if it does not answer)."""
        if self._proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self._proc.stdin is not None
                self._proc.stdin.close()  # the child stops its server and exits
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> RemoteApiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve_remote(options: Obj) -> None:
    """The child of a RemoteApiServer: a FakeApiServer driven by JSON lines on stdin."""
    server = FakeApiServer(**options)
    server.start()

    def say(answer: Obj) -> None:
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    say({"ok": True, "result": {"url": server.url}})
    try:
        for line in sys.stdin:
            request = json.loads(line)
            method = request["call"]
            try:
                if method == "resource_version":
                    result: Any = server.resource_version
                elif method == "fail_next":
                    server.fail_next(*request["args"], **request["kwargs"])
                    result = None
                elif method in _REMOTE_CALLS:
                    result = getattr(server, method)(*request["args"], **request["kwargs"])
                else:
                    raise ValueError(f"{method!r} cannot be called from another process")
            except Exception as error:
                say({"ok": False, "error": repr(error)})
            else:
                say({"ok": True, "result": result})
    finally:
        server.stop()


if __name__ == "__main__":
    _serve_remote(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
