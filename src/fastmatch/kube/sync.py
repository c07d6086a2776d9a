"""The reflector: one kind of object followed from the API server.

client-go's algorithm (``tools/cache/reflector.go``) in three small steps, as
kopf shapes it: :meth:`Reflector.run` loops for ever, :meth:`Reflector._list`
makes one full paginated list, :meth:`Reflector._watch` follows one HTTP
stream.  What each failure means:

- the list: ``limit``/``continue`` pages, without ``resourceVersion`` (a
  consistent read: the only one the API server paginates, and one that is
  never older than what the sync held).  Its pages go to the sink as they come,
  then a ``replace``: the sink builds the new state aside and swaps it in at
  once, removing whatever vanished while the sync was not watching;
- the watch: from the last version seen (the list's, then each event's and
  bookmark's), ``allowWatchBookmarks``, and a random ``timeoutSeconds`` in
  [300, 600] so that watchers do not all come back at once.  A stream that ends
  normally is resumed from the last version seen;
- ``410 Gone`` (an HTTP status, an ERROR event, an expired ``continue``): the
  version is older than the server's history, so only a new list can say what
  happened since: list again;
- ``429``, a refused or dropped connection, a server error: wait (the
  :class:`~fastmatch.kube.backoff.Backoff`) and watch again from the same
  version, without a list: the history is still there;
- silence (no byte, not even a bookmark, for ``dead_stream_seconds``; the
  server bookmarks every minute): the stream is dead, though the socket may not
  know it; close it and resume at once.

The reflector reads and hands over; it never applies, so a slow index never
keeps it off the socket longer than the sink's bounded queue allows.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastmatch.kube.backoff import Backoff
from fastmatch.kube.errors import KubeConfigError
from fastmatch.kube.stats import SyncStats

__all__ = ["Event", "Lister", "Reflector", "Sink", "SyncOptions", "decode_lines"]

# The client's list function of one kind, its path arguments bound: called with the
# query (watch, resource_version, limit, _continue, ...) and _preload_content=False,
# it returns the urllib3 response, or raises kubernetes.client.ApiException.
Lister = Callable[..., Any]
Event = tuple[str, dict[str, Any]]  # (ADDED | MODIFIED | DELETED, the object)

_SHORT_WATCH = 1.0  # a watch that ends this soon with nothing in it is a failure


@dataclass(frozen=True)
class SyncOptions:
    """How the reflectors talk to the API server.

    ``page_size``: items per list page.  ``dead_stream_seconds``: silence after which a
    watch is closed and resumed (the server bookmarks each minute).  ``connect_timeout``:
    to open a connection.  ``list_timeout``: the longest wait for a list page's bytes.
    ``watch_seconds``: the range ``timeoutSeconds`` is drawn from.  ``backoff_initial``,
    ``backoff_cap``, ``backoff_reset``: the :class:`Backoff` after failures.
    ``resolve_retry_initial``, ``resolve_retry_cap``: the wait before asking a layer source
    again about an image it failed to resolve, doubling to the cap.
    """

    page_size: int = 500
    dead_stream_seconds: float = 70.0
    connect_timeout: float = 10.0
    list_timeout: float = 60.0
    watch_seconds: tuple[int, int] = (300, 600)
    backoff_initial: float = 0.8
    backoff_cap: float = 30.0
    backoff_reset: float = 120.0
    resolve_retry_initial: float = 1.0
    resolve_retry_cap: float = 300.0

    def __post_init__(self) -> None:
        if type(self.page_size) is not int or self.page_size < 1:
            raise KubeConfigError(f"page_size must be a positive integer, got {self.page_size!r}")
        for name in ("dead_stream_seconds", "connect_timeout", "list_timeout",
                     "backoff_initial", "backoff_cap", "backoff_reset",
                     "resolve_retry_initial", "resolve_retry_cap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise KubeConfigError(f"{name} must be a positive number of seconds, "
                                      f"got {value!r}")
        low, high = self.watch_seconds
        if not 1 <= low <= high:
            raise KubeConfigError(f"watch_seconds must be a range of positive seconds, "
                                  f"got {self.watch_seconds!r}")

    def backoff(self) -> Backoff:
        """A new backoff with these numbers."""
        return Backoff(self.backoff_initial, self.backoff_cap, reset_after=self.backoff_reset)


class Sink(Protocol):
    """Where a reflector hands what it read; each call returns False once the sync stops."""

    def page(self, kind: str, items: list[dict[str, Any]], first: bool) -> bool:
        """One page of a full list of ``kind`` (``first``: a list starts, or starts again)."""
        ...

    def replace(self, kind: str, resource_version: str) -> bool:
        """The pages since the last ``first`` are every object of ``kind`` as of
        ``resource_version``: the new state, whole."""
        ...

    def events(self, kind: str, events: list[Event], received: float) -> bool:
        """Changes to ``kind``, in order, read at ``received`` (``time.monotonic``)."""
        ...


class _Stopped(Exception):
    """The sync is stopping: leave the loop."""


class _Gone(Exception):
    """410: the version asked for is older than the server's history."""


class _Retry(Exception):
    """A failure to wait out before asking again (at least ``after`` seconds)."""

    def __init__(self, message: str, after: float = 0.0) -> None:
        super().__init__(message)
        self.after = after


class _Resume(Exception):
    """The stream ended early but the version is good: watch again at once."""


def _retry_after(value: object) -> float:
    try:
        return max(0.0, float(str(value)))
    except ValueError:
        return 0.0


def _api_failure(exc: Exception) -> Exception:
    """What an ``ApiException`` (status, headers, body) means for the loop."""
    status = getattr(exc, "status", 0) or 0
    if status == 410:
        return _Gone(f"HTTP 410: {getattr(exc, 'reason', '')}")
    headers = getattr(exc, "headers", None) or {}
    after = _retry_after(headers.get("Retry-After", 0)) if status == 429 else 0.0
    reason = getattr(exc, "reason", "") or type(exc).__name__
    return _Retry(f"HTTP {status}: {reason}" if status else str(reason), after)


def _transport_errors() -> tuple[type[BaseException], ...]:
    import urllib3.exceptions

    return (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


def _read_timeout() -> type[BaseException]:
    import urllib3.exceptions

    return urllib3.exceptions.ReadTimeoutError


def _resource_version(obj: object) -> str:
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            rv = meta.get("resourceVersion")
            if isinstance(rv, str):
                return rv
    return ""


def decode_lines(lines: list[bytes]) -> list[Any]:
    """The watch events of a chunk's lines (blank ones skipped), decoded in one call: one
    JSON array is far cheaper than a decoder's start-up per line.  A line that is not
    JSON is found and reported as alone (``ValueError``)."""
    lines = [line for line in lines if line.strip()]
    if len(lines) > 1:
        try:
            events: list[Any] = json.loads(b"[" + b",".join(lines) + b"]")
        except ValueError:
            pass  # read line by line below, so that the bad one is the one named
        else:
            # Two values on one line, or one split over two, would join into an array
            # of another length: only one value per line is a stream of events.
            if len(events) == len(lines):
                return events
    return [json.loads(line) for line in lines]


class Reflector:
    """Follows one kind of object (a :data:`Lister`) into a :class:`Sink` until ``stop``.

    ``kind`` names it in the sink's calls and in problems.  ``resource_version`` is the
    last version seen (``""`` before the first list).  :meth:`close` cuts the open
    stream so that a stopping :meth:`run` returns at once.
    """

    def __init__(
        self,
        kind: str,
        lister: Lister,
        sink: Sink,
        *,
        stop: threading.Event,
        stats: SyncStats,
        options: SyncOptions | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.kind = kind
        self.resource_version = ""
        self.listed = False  # the first list reached the sink
        self._lister = lister
        self._sink = sink
        self._stop = stop
        self._stats = stats
        self._options = options or SyncOptions()
        self._backoff = self._options.backoff()
        self._rng = rng or random.Random()
        self._lock = threading.Lock()  # guards _response between run() and close()
        self._response: Any = None
        self._last_list = -1e9
        self._transport = _transport_errors()
        self._silent = _read_timeout()
        from kubernetes.client.exceptions import ApiException

        self._api_exception: type[Exception] = ApiException

    # -- the loop -------------------------------------------------------------

    def run(self) -> None:
        """List, then watch, through every failure, until the sync stops."""
        try:
            self._loop()
        except _Stopped:
            return

    def _loop(self) -> None:
        need_list = True
        while not self._stop.is_set():
            try:
                if need_list:
                    self._list()
                    need_list = False
                self._watch()
            except _Stopped:
                return
            except _Gone as exc:
                # The version is no longer in the server's history: what changed since is
                # known only to a new list.  Listing again at once is the cheapest way
                # back, unless the last list was a moment ago (a server that answers 410 to
                # every fresh version would be hammered).
                need_list = True
                self._stats.problem(f"{self.kind}: {exc}; listing again")
                if time.monotonic() - self._last_list < _SHORT_WATCH:
                    self._pause(self._backoff.next())
            except _Resume:
                continue
            except _Retry as exc:
                self._stats.problem(f"{self.kind}: {exc}")
                self._pause(max(self._backoff.next(), exc.after))
            except self._api_exception as exc:
                failure = _api_failure(exc)
                if isinstance(failure, _Gone):
                    need_list = True
                    self._stats.problem(f"{self.kind}: {failure}; listing again")
                    if time.monotonic() - self._last_list < _SHORT_WATCH:
                        self._pause(self._backoff.next())
                else:
                    assert isinstance(failure, _Retry)
                    self._stats.add("watch_errors")
                    self._stats.problem(f"{self.kind}: {failure}")
                    self._pause(max(self._backoff.next(), failure.after))
            except self._transport as exc:
                if self._stop.is_set():
                    return
                # Refused, reset, timed out connecting: the server (or the way to it) is
                # down for now; its history is not lost, so no list, only a wait.
                self._stats.add("watch_errors")
                self._stats.problem(f"{self.kind}: {type(exc).__name__}: {exc}")
                self._pause(self._backoff.next())
            except ValueError as exc:  # a body that is not what the API server sends
                self._stats.add("watch_errors")
                self._stats.problem(f"{self.kind}: unreadable answer: {exc}")
                self._pause(self._backoff.next())

    def close(self) -> None:
        """Cut the open stream, if any (from another thread; :meth:`run` then returns)."""
        with self._lock:
            response = self._response
        if response is not None:
            with contextlib.suppress(Exception):  # a socket already gone is what we want
                response.shutdown()
            with contextlib.suppress(Exception):
                response.close()

    def _pause(self, seconds: float) -> None:
        self._stats.waited(seconds)
        if self._stop.wait(seconds):
            raise _Stopped

    def _request(self, **query: Any) -> Any:
        # Checked before every request, so that after stop() none leaves.
        if self._stop.is_set():
            raise _Stopped
        response = self._lister(_preload_content=False, **query)
        with self._lock:
            self._response = response
        if self._stop.is_set():
            self._done(response, reuse=False)
            raise _Stopped
        return response

    def _done(self, response: Any, *, reuse: bool = True) -> None:
        with self._lock:
            if self._response is response:
                self._response = None
        # A list read to its end leaves a connection to use again; a watch stream cut
        # or ended is closed, so that the server sees the watcher go.
        with contextlib.suppress(Exception):  # a connection cut by close() cannot go back
            if reuse:
                response.release_conn()
            else:
                response.close()

    # -- one list -------------------------------------------------------------

    def _list(self) -> None:
        options = self._options
        token: str | None = None
        while True:
            query: dict[str, Any] = {
                "limit": options.page_size,
                "_request_timeout": (options.connect_timeout, options.list_timeout),
            }
            if token:
                query["_continue"] = token  # an expired one answers 410: list again
            response = self._request(**query)
            try:
                body = json.loads(response.data)
            finally:
                self._done(response)
            if not isinstance(body, dict) or not isinstance(body.get("items", []), list):
                raise ValueError(f"a list of {self.kind} that is not one: {str(body)[:200]}")
            meta = body.get("metadata") or {}
            page = [item for item in body.get("items") or [] if isinstance(item, dict)]
            # Handed over page by page, so that each is read while the next is on its way.
            if not self._sink.page(self.kind, page, token is None):
                raise _Stopped
            token = meta.get("continue") if isinstance(meta, dict) else None
            if not token:
                break
        version = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if not isinstance(version, str) or not version:
            raise ValueError(f"a list of {self.kind} without metadata.resourceVersion")
        self._stats.add("lists")
        if self.listed:
            self._stats.add("relists")
        if not self._sink.replace(self.kind, version):
            raise _Stopped
        self.resource_version = version
        self.listed = True
        self._last_list = time.monotonic()

    # -- one watch ------------------------------------------------------------

    def _watch(self) -> None:
        options = self._options
        low, high = options.watch_seconds
        started = time.monotonic()
        self._stats.add("watches")
        response = self._request(
            watch=True,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._rng.randint(low, high),
            # The read timeout is the dead-stream timer: it fires when no byte came for
            # that long, and the server sends at least a bookmark each minute.
            _request_timeout=(options.connect_timeout, options.dead_stream_seconds),
        )
        seen = 0
        try:
            seen = self._follow(response)
        except self._silent:
            if self._stop.is_set():
                raise _Stopped from None
            self._stats.add("dead_streams")
            self._stats.problem(f"{self.kind}: no event for {options.dead_stream_seconds} s; "
                                "resuming the watch")
            raise _Resume from None
        except self._transport as exc:
            if self._stop.is_set():
                raise _Stopped from None
            self._stats.add("watch_errors")
            # A stream cut after it carried something: the version is good, resume now.
            # Cut at once, it may be the server refusing us: wait first.
            if seen or time.monotonic() - started >= _SHORT_WATCH:
                raise _Resume from None
            raise _Retry(f"watch dropped: {type(exc).__name__}") from None
        finally:
            self._done(response, reuse=False)
        if self._stop.is_set():
            raise _Stopped
        if not seen and time.monotonic() - started < _SHORT_WATCH:
            # client-go's "very short watch": a server that closes at once would
            # otherwise be asked again in a tight loop.
            raise _Retry("the watch closed at once with nothing in it")

    def _follow(self, response: Any) -> int:
        """Read a watch stream to its end; return how many events and bookmarks it held."""
        seen = 0
        rest = b""
        for chunk in response.stream(2**16, decode_content=True):
            received = time.monotonic()
            lines = (rest + chunk).split(b"\n") if rest else chunk.split(b"\n")
            rest = lines.pop()
            batch: list[Event] = []
            version = ""
            for event in decode_lines(lines):
                kind, obj = self._event(event)
                seen += 1
                version = _resource_version(obj) or version
                if kind == "BOOKMARK":
                    self._stats.add("bookmarks")
                else:
                    batch.append((kind, obj))
            if batch:
                self._stats.add("events_received", len(batch))
                if not self._sink.events(self.kind, batch, received):
                    raise _Stopped
            if version:
                # Only once the events are handed over: a resumed watch must not skip them.
                self.resource_version = version
        return seen

    def _event(self, event: object) -> tuple[str, dict[str, Any]]:
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            raise ValueError(f"a watch event that is not one: {str(event)[:200]}")
        kind, obj = event.get("type"), event["object"]
        if kind == "ERROR":
            # The object is a Status.  410 is the version too old (the history moved
            # past it while we were away); anything else, wait and watch again.
            code = obj.get("code")
            message = obj.get("message", "")
            if code == 410:
                raise _Gone(f"ERROR event 410: {message}")
            details = obj.get("details")
            after = _retry_after(details.get("retryAfterSeconds", 0)) \
                if isinstance(details, dict) else 0.0
            self._stats.add("watch_errors")
            raise _Retry(f"ERROR event {code}: {message}", after)
        if kind not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
            raise ValueError(f"a watch event of unknown type {kind!r}")
        return kind, obj
