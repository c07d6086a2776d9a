"""Kubernetes-style files as documents: YAML (several documents) and JSON.

A path is a file, a directory (every ``.yaml``, ``.yml``, ``.json`` and
``.jsonl`` file inside it, recursively, in sorted order) or ``-`` for standard
input.  A file holds YAML documents, one JSON value, or JSON Lines; a
``List`` (``kubectl get -o json``) or a JSON array is opened into its items.

Every object comes with where it was found, so that an error names the file,
the document (numbered from 1, with its kind and name) and the field, as
``kubectl`` writes field paths (list indexes from 0)::

    deploy.yaml: document 2 (Deployment web): spec.template.spec.containers[1].image: ...

The readers raise :class:`FieldError` with a field path; :func:`located`
turns it into the :class:`~fastmatch.errors.InputFileError` a user sees.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from itertools import count, repeat
from pathlib import Path
from typing import Any, NoReturn

import yaml

from fastmatch.errors import FastmatchError, InputFileError

__all__ = [
    "EXTENSIONS",
    "FieldError",
    "Located",
    "Paths",
    "bulk",
    "expand_paths",
    "field_error",
    "label",
    "objects_in",
    "read_objects",
    "read_stdin",
    "read_text",
]

EXTENSIONS = (".yaml", ".yml", ".json", ".jsonl")

try:  # libyaml's loader when PyYAML was built with it: several times faster
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader


class FieldError(Exception):
    """A field of an object is bad: raised inside the readers with the field's path,
    and reworded with the file and document by :meth:`Located.error`."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


def field_error(field: str, problem: str) -> NoReturn:
    """Raise :class:`FieldError` (a one-line ``raise`` for the readers)."""
    raise FieldError(field, problem)


def label(obj: Mapping[str, Any]) -> str:
    """``Deployment web``, ``ImageCache imc-1``, ``Pod default/web-0``: an object's kind and
    name for a message (namespace only when set)."""
    kind = obj.get("kind")
    meta = obj.get("metadata")
    name = namespace = None
    if isinstance(meta, Mapping):
        name = meta.get("name") or meta.get("generateName")
        namespace = meta.get("namespace")
    text = kind if isinstance(kind, str) and kind else "object"
    if isinstance(name, str) and name:
        text += f" {namespace}/{name}" if isinstance(namespace, str) and namespace else f" {name}"
    return text


class Located:
    """An object read from a file, with where it was read."""

    __slots__ = ("_item", "_place", "obj")

    def __init__(self, obj: object, place: str, item: int = -1) -> None:
        self.obj = obj
        self._place = place  # "deploy.yaml: document 2", "list.json: document 1"
        self._item = item  # its index in the List's items there, or -1

    @property
    def where(self) -> str:
        """``deploy.yaml: document 2 (Deployment web)``: the place, with the object's kind
        and name (worded when asked: most objects are never in a message)."""
        obj = self.obj
        place = self._place if self._item < 0 else f"{self._place}: items[{self._item}]"
        return f"{place} ({label(obj)})" if isinstance(obj, Mapping) else place

    def error(self, exc: FieldError | FastmatchError) -> InputFileError:
        """The user's error for ``exc`` raised while reading this object."""
        return InputFileError(f"{self.where}: {exc}")


Paths = Iterable[str | os.PathLike[str]] | str | os.PathLike[str]


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """The garbage collector paused while a reader builds its objects.

    A read makes a million small objects and no cycles; with the collector on,
    each of its generation-2 passes walks every object the process holds (the
    parsed documents too), which more than doubles a large read.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def expand_paths(paths: Paths) -> list[str]:
    """The files ``paths`` name: files as given, directories' files (by extension, sorted),
    ``-`` for standard input.  A path that does not exist is an error."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[str] = []
    for path in paths:
        name = os.fspath(path)
        if name == "-":
            files.append(name)
        elif os.path.isdir(name):
            found = sorted(
                str(p) for p in Path(name).rglob("*") if p.suffix in EXTENSIONS and p.is_file()
            )
            if not found:
                raise InputFileError(
                    f"{name}: a directory with no {', '.join(EXTENSIONS)} file in it"
                )
            files.extend(found)
        elif not os.path.exists(name):
            raise InputFileError(f"{name}: no such file or directory")
        else:
            files.append(name)
    return files


def read_stdin() -> str:
    """Standard input as UTF-8 text, decoded strictly (its own decoding may let bytes that
    are not UTF-8 through as surrogates); raise ``UnicodeDecodeError`` if it is not."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # replaced by a text stream (tests, embedding programs)
        return sys.stdin.read()
    data: bytes = buffer.read()
    return data.decode("utf-8-sig")


def read_text(name: str) -> str:
    """The text of file ``name`` (``-``: standard input), as UTF-8 (a byte order mark
    allowed); an unreadable file is an :class:`~fastmatch.errors.InputFileError`."""
    try:
        return read_stdin() if name == "-" else Path(name).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{name}: not UTF-8 text ({exc.reason})") from None


def _short(exc: ValueError) -> str:
    # Python's message for a huge integer ends in advice to the programmer.
    return str(exc).split("; use sys.")[0]


def _json(text: str, name: str, where: str | None = None) -> object:
    at = where or name
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(
            f"{at}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise InputFileError(f"{at}: not valid JSON: nested too deeply") from None
    except ValueError as exc:  # an integer of thousands of digits
        raise InputFileError(f"{at}: not valid JSON: {_short(exc)}") from None


def _documents(name: str) -> list[tuple[str, object]]:
    """The documents of one file, in order, each with its place (``document 2``, or
    ``line 7`` of JSON Lines); ``None`` for an empty YAML document."""
    text = read_text(name)
    shown = "<stdin>" if name == "-" else name
    if name.endswith(".jsonl"):
        return [
            (f"{shown}: line {number}", _json(line, shown, f"{shown}: line {number}"))
            for number, line in enumerate(text.splitlines(), 1)
            if line.strip()
        ]
    stripped = text.lstrip()
    if name.endswith(".json") or stripped.startswith(("{", "[")):
        # JSON is YAML too, but json.loads is many times faster than any YAML loader.
        try:
            return [(f"{shown}: document 1", json.loads(text))]
        except (json.JSONDecodeError, RecursionError, ValueError):
            if name.endswith(".json"):
                return [(shown, _json(text, shown))]  # raises, naming line and column
            # A YAML flow mapping that is not JSON: let YAML read it.
    try:
        docs = yaml.load_all(text, Loader=_Loader)
        return [(f"{shown}: document {number}", doc) for number, doc in enumerate(docs, 1)]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if mark is not None and text[mark.index: mark.index + 1] == "\t":
            problem = "a tab where YAML allows only spaces (indent with spaces)"
        raise InputFileError(f"{shown}: not valid YAML: {problem}{at}") from None
    except RecursionError:
        raise InputFileError(
            f"{shown}: not valid YAML: nested too deeply (a YAML alias inside itself?)"
        ) from None
    except ValueError as exc:  # a scalar YAML types but cannot build: 2001-13-45, huge ints
        raise InputFileError(f"{shown}: not valid YAML: {_short(exc)}") from None


_DICT = {dict}


def _objects(doc: object, where: str) -> Iterator[Located]:
    """The objects of one document: itself, or a List's or an array's items."""
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            yield from _objects(item, f"{where}: [{i}]")
        return
    if type(doc) is not dict and not isinstance(doc, Mapping):
        raise InputFileError(f"{where}: expected an object, got {type(doc).__name__}")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
        items = doc.get("items")
        if items is None:  # `kubectl get` of nothing prints "items": null on some versions
            return
        if not isinstance(items, list):
            raise InputFileError(f"{where}: items: expected a list, got {type(items).__name__}")
        if set(map(type, items)) - _DICT:  # told in one C pass: then the first is found
            for i, item in enumerate(items):
                if type(item) is not dict and not isinstance(item, Mapping):
                    raise InputFileError(
                        f"{where}: items[{i}]: expected an object, got {type(item).__name__}"
                    )
        # A cluster's List is ten thousand objects: each one's place is worded when asked.
        yield from map(Located, items, repeat(where), count())
        return
    yield Located(doc, where)


def objects_in(doc: object, where: str) -> list[Located]:
    """The objects of one parsed document (an object, a ``List``'s items, an array's
    items), each with its place under ``where``: what :func:`read_objects` gives for a
    file holding that document, for a program that parsed it already."""
    return list(_objects(doc, where))


def read_objects(paths: Paths) -> list[Located]:
    """Every object in ``paths``, in order, each with where it was read.

    All or nothing: a file that cannot be read or parsed raises
    :class:`~fastmatch.errors.InputFileError` and nothing is returned.
    """
    found: list[Located] = []
    for name in expand_paths(paths):
        for where, doc in _documents(name):
            if doc is None:  # an empty YAML document ("---" at the end)
                continue
            found.extend(_objects(doc, where))
    return found
