"""The HTTP side of the OCI Distribution API: transport, authentication, retries.

One :class:`RegistryClient` serves many threads: it keeps a pool of
keep-alive connections per endpoint, bounds the requests in flight with a
semaphore, and remembers per registry how it asked to be authenticated so
that only the first request to a repository meets a ``401``.

Retries: ``429`` and ``5xx`` answers and dropped connections are retried with
exponential backoff and jitter, honouring ``Retry-After`` (seconds or an HTTP
date, capped by ``max_retry_wait``).  A refused TLS certificate is not
retried: it will not get better.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import math
import random
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

from fastmatch.errors import ValidationError
from fastmatch.imageref import ImageReference
from fastmatch.registry.auth import Challenge, Credentials, parse_challenges
from fastmatch.registry.config import RegistryConfig, RegistryOptions
from fastmatch.registry.errors import (
    ReferenceNotFoundError,
    RegistryUnavailableError,
    RegistryUnreachableError,
    ResolveError,
    UnauthorizedError,
)
from fastmatch.registry.manifest import ACCEPT

__all__ = [
    "MAX_CONCURRENCY",
    "MAX_MANIFEST_BYTES",
    "MAX_RETRIES",
    "MAX_WAIT",
    "RegistryClient",
    "Response",
]

log = logging.getLogger("fastmatch.registry")

MAX_MANIFEST_BYTES = 4 << 20  # containerd's limit: no real manifest comes close
MAX_WAIT = 1e6  # seconds (11 days): a longer timeout or wait overflows the OS's timers
MAX_CONCURRENCY = 1024  # requests in flight: one thread each, and threads are finite
MAX_RETRIES = 100  # past this a registry that keeps failing is only waited for
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "fastmatch-registry/0.1"


@dataclass(frozen=True, slots=True)
class Response:
    """A finished HTTP exchange: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


@dataclass(slots=True)
class _Token:
    header: str
    expires: float


class _Pool:
    """Idle keep-alive connections per (scheme, host, TLS options)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def take(
        self, scheme: str, netloc: str, context: ssl.SSLContext | None, timeout: float
    ) -> tuple[http.client.HTTPConnection, bool]:
        key = (scheme, netloc, id(context))
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=timeout, context=context), False
        return http.client.HTTPConnection(netloc, timeout=timeout), False

    def give(
        self, scheme: str, netloc: str, context: ssl.SSLContext | None,
        conn: http.client.HTTPConnection,
    ) -> None:
        key = (scheme, netloc, id(context))
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < 32:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            pools = list(self._idle.values())
            self._idle.clear()
        for idle in pools:
            for conn in idle:
                conn.close()


class RegistryClient:
    """Fetch manifests from registries, per the OCI Distribution API.

    ``timeout``: seconds for connecting and for each read.  ``retries``: how
    many times a ``429``/``5xx`` answer or a dropped connection is retried.
    ``max_concurrency``: requests in flight at once, over all registries.
    ``backoff``: the first wait between retries, doubled each time, up to
    ``max_retry_wait``, which also caps a ``Retry-After``.
    """

    def __init__(
        self,
        config: RegistryConfig | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        max_concurrency: int = 8,
        backoff: float = 0.5,
        max_retry_wait: float = 60.0,
    ) -> None:
        _check_count("max_concurrency", max_concurrency, 1, MAX_CONCURRENCY)
        _check_count("retries", retries, 0, MAX_RETRIES)
        _check_seconds("timeout", timeout, positive=True)
        _check_seconds("backoff", backoff)
        _check_seconds("max_retry_wait", max_retry_wait)
        self.config = config if config is not None else RegistryConfig()
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_retry_wait = max_retry_wait
        self.max_concurrency = max_concurrency
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._pool = _Pool()
        self._contexts: dict[tuple[bool, str | None], ssl.SSLContext] = {}
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._lock = threading.Lock()
        self.requests = 0  # HTTP exchanges made, for reports and tests

    def close(self) -> None:
        """Close idle connections."""
        self._pool.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Public ----------------------------------------------------------------------

    def fetch_manifest(
        self, ref: ImageReference, reference: str, *, head: bool = False
    ) -> Response:
        """GET (or HEAD) ``/v2/<name>/manifests/<reference>`` with the manifest ``Accept``.

        Raise a :class:`ResolveError` subclass naming ``ref`` and its registry
        on any answer but ``200``.
        """
        path = f"/v2/{ref.path}/manifests/{urllib.parse.quote(reference, safe=':')}"
        try:
            return self._authorized(ref, "HEAD" if head else "GET", path, {"Accept": ACCEPT})
        except ReferenceNotFoundError as exc:
            if getattr(exc, "registry_code", None) == "NAME_UNKNOWN":
                raise
            raise self._explain_missing(ref, reference, exc) from None

    def _explain_missing(
        self, ref: ImageReference, reference: str, error: ReferenceNotFoundError
    ) -> ReferenceNotFoundError:
        """Tell an unknown repository from an unknown tag: registries answer
        ``MANIFEST_UNKNOWN`` for both, but list tags only of a repository that exists."""
        try:
            listing = self._authorized(ref, "GET", f"/v2/{ref.path}/tags/list?n=100",
                                       {"Accept": "application/json"})
        except ReferenceNotFoundError:
            return ReferenceNotFoundError(
                ref.normalized, ref.domain, f"repository {ref.path} not found"
            )
        except ResolveError:
            return error
        try:
            tags = [str(t) for t in json.loads(listing.body).get("tags") or []]
        except (ValueError, AttributeError, TypeError, RecursionError):
            return error
        what = "digest" if reference.startswith(("sha256:", "sha512:")) else "tag"
        shown = ", ".join(sorted(tags)[:10]) + (", ..." if len(tags) > 10 else "")
        return ReferenceNotFoundError(
            ref.normalized, ref.domain,
            f"{what} {reference} not found in {ref.path} "
            f"(the repository has {'tags ' + shown if tags else 'no tags'})",
        )

    # Authentication ------------------------------------------------------------------

    def _authorized(
        self, ref: ImageReference, method: str, path: str, headers: dict[str, str]
    ) -> Response:
        host = ref.domain
        scope = f"repository:{ref.path}:pull"
        credentials = self.config.credentials_for(host, ref.path)
        auth = self._known_auth(ref, scope, credentials)
        response = self._send(ref, host, method, path, _with_auth(headers, auth))
        if response.status == 401:
            challenge = _pick_challenge(response.headers.get("www-authenticate", ""))
            if challenge is None:
                self._fail(ref, 401, response, "unauthorized: no usable WWW-Authenticate challenge")
            with self._lock:
                self._challenges[host] = challenge
            auth = self._answer(ref, challenge, scope, credentials, refresh=auth is not None)
            response = self._send(ref, host, method, path, _with_auth(headers, auth))
        if response.status != 200:
            self._fail(ref, response.status, response, None,
                       had_credentials=credentials is not None and not credentials.empty)
        return response

    def _known_auth(
        self, ref: ImageReference, scope: str, credentials: Credentials | None
    ) -> str | None:
        """The Authorization to send first, learnt from earlier challenges of this registry."""
        with self._lock:
            challenge = self._challenges.get(ref.domain)
        if challenge is None:
            return None
        return self._answer(ref, challenge, scope, credentials, refresh=False)

    def _answer(
        self, ref: ImageReference, challenge: Challenge, scope: str,
        credentials: Credentials | None, *, refresh: bool,
    ) -> str:
        if challenge.scheme == "basic":
            basic = credentials.basic() if credentials else None
            if basic is None:
                raise UnauthorizedError(
                    ref.normalized, ref.domain,
                    "unauthorized: the registry asks for a username and password and none "
                    "were found (docker config.json, pull secret)",
                )
            return basic
        if credentials is not None and credentials.registry_token:
            return f"Bearer {credentials.registry_token}"
        key = (ref.domain, scope)
        with self._lock:
            token = self._tokens.get(key)
        if token is not None and not refresh and token.expires > time.monotonic():
            return token.header
        token = self._fetch_token(ref, challenge, scope, credentials)
        with self._lock:
            self._tokens[key] = token
        return token.header

    def _fetch_token(
        self, ref: ImageReference, challenge: Challenge, scope: str,
        credentials: Credentials | None,
    ) -> _Token:
        realm = challenge.params.get("realm")
        if not realm:
            raise UnauthorizedError(
                ref.normalized, ref.domain, "unauthorized: Bearer challenge without a realm"
            )
        try:
            parsed = urllib.parse.urlsplit(realm)
        except ValueError:  # an unclosed IPv6 bracket, say
            parsed = urllib.parse.SplitResult("", "", "", "", "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UnauthorizedError(
                ref.normalized, ref.domain, f"unauthorized: bad token realm {realm!r}"
            )
        params = {"scope": scope}
        service = challenge.params.get("service")
        if service:
            params["service"] = service
        headers = {"Accept": "application/json"}
        method = "GET"
        body: bytes | None = None
        if credentials is not None and credentials.identity_token:
            # docker login's identity token is an OAuth2 refresh token (POST form).
            method = "POST"
            form = {"grant_type": "refresh_token", "refresh_token": credentials.identity_token,
                    "client_id": "fastmatch", **params}
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            basic = credentials.basic() if credentials else None
            if basic is not None:
                headers["Authorization"] = basic
        query = urllib.parse.urlencode(params)
        target = parsed._replace(query="&".join(q for q in (parsed.query, query) if q))
        started = time.monotonic()
        response = self._send(
            ref, ref.domain, method, urllib.parse.urlunsplit(target), headers, body=body
        )
        if response.status in (401, 403):
            raise UnauthorizedError(
                ref.normalized, ref.domain,
                f"unauthorized: the token server {parsed.netloc} refused "
                + ("the credentials" if credentials and not credentials.empty
                   else "anonymous access"),
            )
        if response.status != 200:
            self._fail(ref, response.status, response, f"token server {parsed.netloc} answered")
        try:
            doc = json.loads(response.body)
        except (ValueError, RecursionError):
            doc = None
        value = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        try:
            expires_in = float(doc.get("expires_in") or 60) if isinstance(doc, dict) else 60.0
        except (ValueError, TypeError, OverflowError):
            expires_in = 60.0  # the default of the token specification
        if not math.isfinite(expires_in) or expires_in <= 0:
            expires_in = 60.0
        if not isinstance(value, str) or not value:
            raise UnauthorizedError(
                ref.normalized, ref.domain,
                f"unauthorized: the token server {parsed.netloc} gave no token",
            )
        # Renew a little early: a token that expires in flight costs a retry.
        lifetime = max(expires_in - 10.0, expires_in / 2)
        return _Token(f"Bearer {value}", started + lifetime)

    # Transport ----------------------------------------------------------------------

    def _context(self, options: RegistryOptions) -> ssl.SSLContext:
        key = (options.insecure, options.ca_file)
        with self._lock:
            context = self._contexts.get(key)
            if context is None:
                if options.insecure:
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                else:
                    context = ssl.create_default_context(cafile=options.ca_file)
                self._contexts[key] = context
            return context

    def _send(
        self, ref: ImageReference, host: str, method: str, target: str,
        headers: dict[str, str], *, body: bytes | None = None,
    ) -> Response:
        """One request, with retries and redirects.  ``target`` is a path on the
        registry's endpoint, or an absolute URL (token realm, redirect)."""
        if target.startswith(("http://", "https://")):
            url = target
        else:
            options = self.config.options_for(host)
            scheme = "http" if options.plain_http else "https"
            url = f"{scheme}://{self.config.endpoint_for(host)}{target}"
        headers = {"User-Agent": _USER_AGENT, **headers}
        for _ in range(6):
            response = self._with_retries(ref, method, url, headers, body)
            if response.status not in _REDIRECT_STATUS or method not in ("GET", "HEAD"):
                return response
            location = response.headers.get("location")
            if not location:
                return response
            try:
                new_url = urllib.parse.urljoin(url, location)
                moved = urllib.parse.urlsplit(new_url)
            except ValueError:
                moved = urllib.parse.SplitResult("", "", "", "", "")
            if moved.scheme not in ("http", "https") or not moved.netloc:
                raise RegistryUnavailableError(
                    ref.normalized, ref.domain, f"redirected to an unusable location {location!r}"
                )
            if moved.netloc != urllib.parse.urlsplit(url).netloc:
                headers = {k: v for k, v in headers.items() if k != "Authorization"}
            url = new_url
        raise RegistryUnavailableError(ref.normalized, ref.domain, f"too many redirects at {url}")

    def _options_for_url(self, ref: ImageReference, netloc: str) -> RegistryOptions:
        # A token realm or redirect on another host has its own options if given,
        # else those of the registry that sent us there.
        if netloc in self.config.registries:
            return self.config.options_for(netloc)
        return self.config.options_for(ref.domain)

    def _with_retries(
        self, ref: ImageReference, method: str, url: str, headers: dict[str, str],
        body: bytes | None,
    ) -> Response:
        parts = urllib.parse.urlsplit(url)
        options = self._options_for_url(ref, parts.netloc)
        try:
            context = self._context(options) if parts.scheme == "https" else None
        except (ssl.SSLError, OSError) as exc:  # the bundle changed since it was checked
            raise RegistryUnreachableError(
                ref.normalized, ref.domain,
                f"CA bundle {options.ca_file} cannot be loaded ({exc})",
            ) from None
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        attempt = 0
        while True:
            try:
                response = self._exchange(parts.scheme, parts.netloc, context, method, path,
                                          headers, body, url)
            except ssl.SSLCertVerificationError as exc:
                raise RegistryUnreachableError(
                    ref.normalized, ref.domain,
                    f"TLS certificate of {parts.netloc} not trusted ({exc.verify_message}); "
                    "give its CA bundle (--ca-file) or mark the registry insecure",
                ) from None
            except ssl.SSLError as exc:
                raise RegistryUnreachableError(
                    ref.normalized, ref.domain,
                    f"TLS handshake with {parts.netloc} failed ({exc.reason or exc}); "
                    "is it a plain-HTTP registry?",
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                if attempt >= self.retries:
                    raise RegistryUnreachableError(
                        ref.normalized, ref.domain,
                        f"unreachable: {_describe(exc)} at {parts.scheme}://{parts.netloc}",
                    ) from None
                wait = self._backoff(attempt, None)
                log.info("%s: %s at %s; retrying in %.1fs", ref.normalized, _describe(exc),
                         parts.netloc, wait)
            else:
                if response.status not in _RETRY_STATUS or attempt >= self.retries:
                    return response
                wait = self._backoff(attempt, response.headers.get("retry-after"))
                log.info("%s: %s answered %d; retrying in %.1fs", ref.normalized,
                         parts.netloc, response.status, wait)
            attempt += 1
            time.sleep(wait)

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            wait = _parse_retry_after(retry_after)
            if wait is not None:
                return min(max(wait, 0.0), self.max_retry_wait)
        base = min(self.backoff * (2 ** min(attempt, 64)), self.max_retry_wait)
        return float(base) * (0.5 + random.random() / 2)  # jitter: not for secrets

    def _exchange(
        self, scheme: str, netloc: str, context: ssl.SSLContext | None, method: str,
        path: str, headers: dict[str, str], body: bytes | None, url: str,
    ) -> Response:
        with self._slots:
            conn, reused = self._pool.take(scheme, netloc, context, self.timeout)
            try:
                try:
                    conn.request(method, path, body=body, headers=headers)
                    raw = conn.getresponse()
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    if not reused:
                        raise
                    # The server closed an idle keep-alive connection: not a failure.
                    conn.close()
                    conn = _fresh(scheme, netloc, context, self.timeout)
                    conn.request(method, path, body=body, headers=headers)
                    raw = conn.getresponse()
                data = raw.read(MAX_MANIFEST_BYTES + 1)
                if len(data) > MAX_MANIFEST_BYTES:
                    conn.close()
                    return Response(413, {}, b"", url)
                with self._lock:
                    self.requests += 1
                result = Response(
                    raw.status, {k.lower(): v for k, v in raw.getheaders()}, data, url
                )
                if raw.will_close:
                    conn.close()
                else:
                    self._pool.give(scheme, netloc, context, conn)
                return result
            except BaseException:
                conn.close()
                raise

    # Errors ---------------------------------------------------------------------------

    def _fail(
        self, ref: ImageReference, status: int, response: Response, context: str | None,
        *, had_credentials: bool = False,
    ) -> NoReturn:
        code, message = _registry_error(response.body)
        said = f"{code}: {message}" if code else f"HTTP {status}"
        prefix = f"{context}: " if context else ""
        reference = ref.digest or ref.tag or "latest"
        error: ResolveError
        if status == 404:
            if code == "NAME_UNKNOWN":
                error = ReferenceNotFoundError(
                    ref.normalized, ref.domain, f"{prefix}repository {ref.path} not found ({said})"
                )
            else:
                what = "digest" if ref.digest else "tag"
                error = ReferenceNotFoundError(
                    ref.normalized, ref.domain,
                    f"{prefix}{what} {reference} not found in {ref.path} ({said})",
                )
        elif status in (401, 403):
            hint = ("the credentials were refused" if had_credentials
                    else "no credentials were found for it")
            if status == 401 and code in (None, "UNAUTHORIZED") and not had_credentials:
                hint += "; the repository may also not exist"
            error = UnauthorizedError(ref.normalized, ref.domain,
                                      f"{prefix}unauthorized ({said}); {hint}")
        elif status in _RETRY_STATUS:
            error = RegistryUnavailableError(
                ref.normalized, ref.domain,
                f"{prefix}registry unavailable ({said}) after {self.retries} retries",
            )
        elif status == 413:
            error = RegistryUnavailableError(
                ref.normalized, ref.domain,
                f"{prefix}manifest larger than {MAX_MANIFEST_BYTES} bytes",
            )
        else:
            error = RegistryUnavailableError(
                ref.normalized, ref.domain, f"{prefix}unexpected answer {status} ({said})"
            )
        error.registry_code = code
        raise error


def _check_count(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{name} must be an integer from {low} to {high}, got {value!r}")


def _check_seconds(name: str, value: object, *, positive: bool = False) -> None:
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and (value > 0 if positive else value >= 0) and value <= MAX_WAIT)
    if not ok:
        bound = "> 0" if positive else ">= 0"
        raise ValidationError(f"{name} must be a number of seconds {bound} and at most "
                              f"{MAX_WAIT:g}, got {value!r}")


def _fresh(
    scheme: str, netloc: str, context: ssl.SSLContext | None, timeout: float
) -> http.client.HTTPConnection:
    if scheme == "https":
        return http.client.HTTPSConnection(netloc, timeout=timeout, context=context)
    return http.client.HTTPConnection(netloc, timeout=timeout)


def _with_auth(headers: dict[str, str], auth: str | None) -> dict[str, str]:
    return {**headers, "Authorization": auth} if auth else headers


def _pick_challenge(header: str) -> Challenge | None:
    challenges = parse_challenges(header)
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


def _registry_error(body: bytes) -> tuple[str | None, str]:
    """The first ``errors[]`` entry of a Distribution error body, if any."""
    try:
        doc = json.loads(body)
        first = doc["errors"][0]
        return str(first.get("code")), str(first.get("message", "")).strip()
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        return None, ""


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return when.timestamp() - time.time()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
