"""Credentials: Docker ``config.json``, Kubernetes pull secrets, auth challenges.

Where credentials come from, in the order they win:

1. options given per registry in :class:`~fastmatch.registry.config.RegistryOptions`;
2. Kubernetes ``kubernetes.io/dockerconfigjson`` (and legacy ``dockercfg``)
   secrets, as the ImageCache's ``imagePullSecrets`` name them;
3. a Docker ``config.json``: ``auths``, then ``credHelpers`` / ``credsStore``.

Keys are matched as the kubelet does: the host (``*`` may stand for one DNS
label), then the longest repository-path prefix, so ``reg.io/team`` beats
``reg.io`` for ``reg.io/team/app``.  Docker Hub answers to ``docker.io``,
``index.docker.io``, ``registry-1.docker.io`` and ``https://index.docker.io/v1/``.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastmatch.errors import InputFileError

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_API_HOST",
    "DOCKER_HUB_AUTH_KEY",
    "Challenge",
    "CredentialStore",
    "Credentials",
    "default_docker_config_path",
    "normalize_registry_key",
    "parse_challenges",
]

log = logging.getLogger("fastmatch.registry")

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True, slots=True)
class Credentials:
    """What to present to a registry.

    ``username``/``password`` serve Basic auth and the token request;
    ``identity_token`` is an OAuth2 refresh token (``docker login`` stores one
    for some registries); ``registry_token`` is a bearer token sent as is.
    """

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    registry_token: str | None = field(default=None, repr=False)

    @property
    def empty(self) -> bool:
        """Whether nothing would be presented."""
        return not (self.username or self.password or self.identity_token or self.registry_token)

    def basic(self) -> str | None:
        """The ``Authorization`` value for Basic auth, if a username and password are known."""
        if self.username is None or self.password is None:
            return None
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def normalize_registry_key(key: str) -> str:
    """Reduce a ``config.json`` / pull-secret key to ``host[:port][/path]``.

    >>> normalize_registry_key("https://index.docker.io/v1/")
    'docker.io'
    >>> normalize_registry_key("HTTPS://Reg.Example.com:5000/v2/team/")
    'reg.example.com:5000/team'
    """
    key = key.strip()
    key = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", key)
    host, _, path = key.partition("/")
    host = host.lower()
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] in ("v1", "v2"):
        parts = parts[1:]
    if host in _HUB_ALIASES:
        host = DOCKER_HUB
    return "/".join([host, *parts])


def _host_matches(pattern: str, host: str) -> bool:
    """Match a host with kubelet's rules: same number of labels, ``*`` for one label."""
    pattern_host, _, pattern_port = pattern.partition(":")
    name, _, port = host.partition(":")
    if pattern_port != port:
        return False
    want = pattern_host.split(".")
    have = name.split(".")
    return len(want) == len(have) and all(
        fnmatch.fnmatchcase(h, w) for w, h in zip(want, have, strict=True)
    )


def _decode_auth(value: object, where: str) -> tuple[str, str]:
    if not isinstance(value, str):
        raise InputFileError(f"{where}: 'auth' must be a base64 string")
    try:
        raw = base64.b64decode(value.strip(), validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InputFileError(f"{where}: 'auth' is not base64 of 'user:password'") from None
    user, sep, password = raw.partition(":")
    if not sep:
        raise InputFileError(f"{where}: 'auth' does not decode to 'user:password'")
    return user, password


def _entry_credentials(entry: object, where: str) -> Credentials:
    if not isinstance(entry, Mapping):
        raise InputFileError(f"{where}: expected an object")
    username = entry.get("username")
    password = entry.get("password")
    if entry.get("auth"):
        username, password = _decode_auth(entry["auth"], where)
    for name, value in (("username", username), ("password", password)):
        if value is not None and not isinstance(value, str):
            raise InputFileError(f"{where}: '{name}' must be a string")
    identity = entry.get("identitytoken") or None
    token = entry.get("registrytoken") or None
    for name, value in (("identitytoken", identity), ("registrytoken", token)):
        if value is not None and not isinstance(value, str):
            raise InputFileError(f"{where}: '{name}' must be a string")
    return Credentials(username or None, password, identity, token)


def default_docker_config_path() -> Path:
    """Where Docker keeps ``config.json``: ``$DOCKER_CONFIG`` or ``~/.docker``."""
    base = os.environ.get("DOCKER_CONFIG")
    return (Path(base) if base else Path.home() / ".docker") / "config.json"


class CredentialStore:
    """Credentials by registry key, filled from config files and pull secrets.

    Later sources do not override earlier ones for the same key, so adding
    pull secrets before the Docker config gives them precedence.  Thread-safe
    for lookups once filled.
    """

    def __init__(self) -> None:
        self._entries: dict[str, Credentials] = {}
        self._helpers: dict[str, str] = {}
        self._store: str | None = None
        self._helper_results: dict[tuple[str, str], Credentials | None] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key: str, credentials: Credentials) -> None:
        """Add credentials for a registry key (host, with optional path)."""
        self._entries.setdefault(normalize_registry_key(key), credentials)

    def add_auths(self, auths: object, where: str) -> None:
        """Add the entries of an ``auths`` object (``config.json`` and secrets share it)."""
        if not isinstance(auths, Mapping):
            raise InputFileError(f"{where}: 'auths' must be an object")
        for key, entry in auths.items():
            credentials = _entry_credentials(entry, f"{where}: auths[{key!r}]")
            if not credentials.empty:
                self.add(str(key), credentials)

    def add_docker_config(self, path: str | os.PathLike[str]) -> None:
        """Read a Docker ``config.json``: ``auths``, ``credHelpers``, ``credsStore``."""
        where = str(path)
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
        except OSError as exc:
            raise InputFileError(f"{where}: cannot read Docker config: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{where}: not UTF-8 text ({exc.reason})") from None
        except (ValueError, RecursionError) as exc:
            raise InputFileError(f"{where}: not valid JSON: {_json_problem(exc)}") from None
        if not isinstance(data, Mapping):
            raise InputFileError(f"{where}: expected a JSON object")
        self.add_auths(data.get("auths", {}), where)
        helpers = data.get("credHelpers", {})
        if not isinstance(helpers, Mapping) or not all(
            isinstance(v, str) for v in helpers.values()
        ):
            raise InputFileError(f"{where}: 'credHelpers' must map registries to helper names")
        for key, helper in helpers.items():
            self._helpers.setdefault(normalize_registry_key(str(key)), helper)
        store = data.get("credsStore")
        if store is not None and not isinstance(store, str):
            raise InputFileError(f"{where}: 'credsStore' must be a string")
        if store and self._store is None:
            self._store = store

    def add_pull_secret(self, secret: Mapping[str, Any], where: str) -> None:
        """Add a Kubernetes ``dockerconfigjson`` or ``dockercfg`` secret (``data`` or
        ``stringData``)."""
        name = f"{where}: secret {_secret_name(secret)}"
        kind = secret.get("type")
        string_data = secret.get("stringData") or {}
        data = secret.get("data") or {}
        if not isinstance(string_data, Mapping) or not isinstance(data, Mapping):
            raise InputFileError(f"{name}: 'data' and 'stringData' must be objects")
        for key, is_cfg in ((".dockerconfigjson", False), (".dockercfg", True)):
            if key in string_data:
                text = string_data[key]
            elif key in data:
                try:
                    text = base64.b64decode(str(data[key]), validate=True).decode("utf-8")
                except binascii.Error:
                    raise InputFileError(f"{name}: data[{key!r}] is not base64") from None
                except UnicodeDecodeError:
                    raise InputFileError(f"{name}: data[{key!r}] is base64 of bytes that are "
                                         "not UTF-8 text") from None
            else:
                continue
            field_name = f"{name}: {key}"
            try:
                config = json.loads(text) if isinstance(text, str) else text
            except (ValueError, RecursionError) as exc:
                raise InputFileError(f"{field_name}: not valid JSON: {_json_problem(exc)}") \
                    from None
            if is_cfg:
                self.add_auths(config, field_name)
            else:
                if not isinstance(config, Mapping):
                    raise InputFileError(f"{field_name}: expected a JSON object")
                self.add_auths(config.get("auths", {}), field_name)
            return
        raise InputFileError(
            f"{name}: type {kind!r} holds neither .dockerconfigjson nor .dockercfg"
        )

    def lookup(self, host: str, path: str = "") -> Credentials | None:
        """The credentials for repository ``path`` on registry ``host``, if any."""
        host = normalize_registry_key(host)
        best: tuple[int, Credentials] | None = None
        repo = path.strip("/")
        for key, credentials in self._entries.items():
            key_host, _, key_path = key.partition("/")
            if not _host_matches(key_host, host):
                continue
            if key_path and not (repo == key_path or repo.startswith(key_path + "/")):
                continue
            # An exact host beats a wildcard; a longer path beats a shorter one.
            score = len(key_path) * 2 + (0 if "*" in key_host else 1)
            if best is None or score > best[0]:
                best = (score, credentials)
        if best is not None:
            return best[1]
        helper = self._helpers.get(host) or self._store
        if helper:
            return self._from_helper(helper, host)
        return None

    def _from_helper(self, helper: str, host: str) -> Credentials | None:
        key = (helper, host)
        if key not in self._helper_results:
            self._helper_results[key] = _run_helper(helper, host)
        return self._helper_results[key]


def _json_problem(exc: ValueError | RecursionError) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    # Python's message for a huge integer ends in advice to the programmer.
    return str(exc).split("; use sys.")[0]


def _secret_name(secret: Mapping[str, Any]) -> str:
    meta = secret.get("metadata")
    if isinstance(meta, Mapping):
        ns = meta.get("namespace")
        name = meta.get("name", "?")
        return f"{ns}/{name}" if ns else str(name)
    return "?"


def _run_helper(helper: str, host: str) -> Credentials | None:
    """Ask ``docker-credential-<helper> get`` as Docker does; ``None`` if it has nothing."""
    program = shutil.which(f"docker-credential-{helper}")
    server = DOCKER_HUB_AUTH_KEY if host == DOCKER_HUB else host
    if program is None:
        log.warning("credential helper docker-credential-%s not found; %s anonymously",
                    helper, server)
        return None
    try:
        done = subprocess.run(
            [program, "get"], input=server, capture_output=True, text=True, timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("credential helper %s failed for %s: %s", helper, server, exc)
        return None
    if done.returncode != 0:
        # "credentials not found in native keychain" is the ordinary miss.
        log.debug("credential helper %s has nothing for %s: %s", helper, server,
                  done.stdout.strip() or done.stderr.strip())
        return None
    try:
        answer = json.loads(done.stdout)
        username, secret = answer["Username"], answer["Secret"]
    except (json.JSONDecodeError, KeyError, TypeError):
        log.warning("credential helper %s gave an unreadable answer for %s", helper, server)
        return None
    if username == "<token>":
        return Credentials(identity_token=secret)
    return Credentials(username=username, password=secret)


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: a scheme and its parameters."""

    scheme: str
    params: Mapping[str, str]


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM_RE = re.compile(rf"\s*({_TOKEN})\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|({_TOKEN}))\s*,?")
_SCHEME_RE = re.compile(rf"\s*,?\s*({_TOKEN})(?:\s+|$)")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value (RFC 7235) into its challenges.

    >>> parse_challenges('Bearer realm="https://auth.io/token",service="reg",scope="a,b"')
    [Challenge(scheme='bearer', params={'realm': 'https://auth.io/token', 'service': 'reg', \
'scope': 'a,b'})]
    """
    challenges: list[Challenge] = []
    pos = 0
    while pos < len(header):
        scheme = _SCHEME_RE.match(header, pos)
        if scheme is None:
            break
        pos = scheme.end()
        params: dict[str, str] = {}
        while True:
            param = _PARAM_RE.match(header, pos)
            if param is None:
                break
            quoted = param.group(2)
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else param.group(3)
            params[param.group(1).lower()] = value
            pos = param.end()
        challenges.append(Challenge(scheme.group(1).lower(), params))
    return challenges

