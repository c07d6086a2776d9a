"""What the sync has seen of each kind, and what it means for the index.

No threads and no network here: the applier thread hands these stores what the
reflectors read, in order, and they decide.

- :class:`CacheStore`: the ``ImageCache`` objects by name.  Per object, only a
  newer version is applied (resourceVersions compare as KEP-5504 says: by
  length, then by text); a delete and a re-create under one name (another
  ``metadata.uid``) replaces the cache; a relist builds the new state aside and
  writes it in one batch that also removes every cache that vanished.  Objects
  are read by :func:`fastmatch.inputs.cache_from_object`, the one reader of
  ImageCaches; one that cannot be read is kept out of the index and counted.
- :class:`ProfileStore`: the ``kube-system/eci-profile`` ConfigMap; a version
  that cannot be read keeps the last good profile, and is counted.
- :class:`NamespaceStore`: the namespaces' labels, which the profile selects on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fastmatch.errors import FastmatchError
from fastmatch.index import CacheIndex
from fastmatch.inputs import EciProfile, ImageReader, LayerSource, cache_from_object
from fastmatch.inputs.caches import ImageSets
from fastmatch.inputs.pods import NAMESPACE_NAME_LABEL
from fastmatch.kube.apply import apply_batch
from fastmatch.kube.stats import SyncStats
from fastmatch.kube.sync import Event
from fastmatch.model import ImageCache

__all__ = ["CacheStore", "NamespaceStore", "ProfileStore", "newer"]


def newer(version: str, than: str) -> bool:
    """Whether resourceVersion ``version`` comes after ``than``.

    Decimal integers (every API server backed by etcd) compare as numbers, by length
    then by text, as KEP-5504 defines; anything else can only be told apart, so a
    different one counts as newer.
    """
    if version.isdigit() and than.isdigit() and version.isascii() and than.isascii():
        return (len(version), version) > (len(than), than)
    return version != than


def _meta(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return "", "", ""
    name, uid, rv = meta.get("name"), meta.get("uid"), meta.get("resourceVersion")
    return (name if isinstance(name, str) else "", uid if isinstance(uid, str) else "",
            rv if isinstance(rv, str) else "")


@dataclass(slots=True)
class _Entry:
    uid: str
    version: str
    obj: dict[str, Any]
    cache: ImageCache | None  # None: the object could not be read


class CacheStore:
    """The ImageCaches seen, by ``metadata.name``, written to ``index`` in batches.

    ``layers`` gives the images' layers (a catalog and what was resolved); ``waiting``
    is told the references a cache lists without layers, so that they can be resolved
    and the cache upgraded (:meth:`upgrade`).
    """

    def __init__(
        self,
        index: CacheIndex,
        *,
        stats: SyncStats,
        layers: LayerSource | None = None,
        waiting: Callable[[str], None] | None = None,
    ) -> None:
        self.index = index
        self._stats = stats
        self._layers = layers
        self._waiting = waiting
        # One reader for every object, and the image lists it read: a watch brings
        # many caches (and versions of one) listing one image set, read once.
        self._sets = ImageSets(ImageReader(layers))
        self._entries: dict[str, _Entry] = {}
        self._owner: dict[str, str] = {}  # cache id -> the name whose cache holds it
        self._by_reference: dict[str, set[str]] = {}  # ref -> names listing it without layers
        self._aside: dict[str, _Entry] | None = None  # a list's state, while its pages come

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        """The names of the objects held."""
        return list(self._entries)

    # -- reading one object ---------------------------------------------------------

    def _read(self, name: str, uid: str, version: str, obj: dict[str, Any]) -> _Entry:
        try:
            cache: ImageCache | None = cache_from_object(obj, sets=self._sets)
        except FastmatchError as exc:
            self._stats.add("bad_objects")
            self._stats.problem(f"ImageCache {name} (resourceVersion {version}) kept out of "
                                f"the index: {exc}")
            cache = None
        if cache is not None and self._waiting is not None:
            for image in cache.images:
                if not image.layers_known:
                    self._by_reference.setdefault(image.ref, set()).add(name)
                    self._waiting(image.ref)
        return _Entry(uid, version, obj, cache)

    # -- changes --------------------------------------------------------------------

    def _put(self, name: str, entry: _Entry, pending: dict[str, ImageCache | None]) -> None:
        old = self._entries.get(name)
        new_id = entry.cache.id if entry.cache is not None else None
        if old is not None and old.cache is not None and old.cache.id != new_id:
            self._release(name, old.cache.id, pending)
        if entry.cache is not None:
            assert new_id is not None
            self._owner[new_id] = name
            # ECI rewrites status.progress as a cache builds: a version the index cannot
            # tell from the one it holds is not written again.
            if old is None or old.cache != entry.cache or new_id in pending:
                pending[new_id] = entry.cache
        self._entries[name] = entry

    def _release(self, name: str, cache_id: str, pending: dict[str, ImageCache | None]) -> None:
        # Two objects may claim one id (status.imageCacheId copied by hand): the last
        # written holds it, and only its owner's going takes it out.
        if self._owner.get(cache_id) == name:
            del self._owner[cache_id]
            pending[cache_id] = None

    def _flush(self, pending: dict[str, ImageCache | None]) -> None:
        if pending:
            apply_batch(
                self.index,
                upserts=[cache for cache in pending.values() if cache is not None],
                removes=[cache_id for cache_id, cache in pending.items() if cache is None],
            )

    def apply(self, events: Iterable[Event]) -> int:
        """Apply watch events in order, as one batch; return how many changed the state."""
        pending: dict[str, ImageCache | None] = {}
        applied = skipped = 0
        for kind, obj in events:
            name, uid, version = _meta(obj)
            if not name:
                self._stats.add("bad_objects")
                self._stats.problem(f"an ImageCache {kind} event without metadata.name")
                continue
            old = self._entries.get(name)
            if old is not None and not newer(version, old.version):
                skipped += 1  # a duplicate or a replay of what the index holds
                continue
            if kind == "DELETED":
                if old is None:
                    skipped += 1
                    continue
                del self._entries[name]
                if old.cache is not None:
                    self._release(name, old.cache.id, pending)
            else:
                # Another uid under a known name is a delete and a re-create seen as one
                # change: the new object replaces the old whole, whatever its id.
                self._put(name, self._read(name, uid, version, obj), pending)
            applied += 1
        self._flush(pending)
        self._stats.add("events_applied", applied)
        self._stats.add("events_skipped", skipped)
        return applied

    def page(self, items: Iterable[dict[str, Any]], *, first: bool) -> None:
        """Read one page of a full list into the state being built aside (``first``: the
        list starts, or starts again after a 410); the index is not touched until
        :meth:`commit`.  Pages are read as they come, while the next is on its way."""
        if first or self._aside is None:
            self._aside = {}
        aside = self._aside
        for obj in items:
            name, uid, version = _meta(obj)
            if not name:
                self._stats.add("bad_objects")
                self._stats.problem("a listed ImageCache without metadata.name")
                continue
            old = self._entries.get(name)
            if old is not None and old.uid == uid and old.version == version:
                aside[name] = old  # unchanged since it was read
            else:
                aside[name] = self._read(name, uid, version, obj)

    def commit(self) -> None:
        """Swap in the state the pages built, in one batch: every changed cache upserted,
        every cache that vanished removed."""
        entries, self._aside = self._aside or {}, None
        owner = {entry.cache.id: name for name, entry in entries.items()
                 if entry.cache is not None}
        pending: dict[str, ImageCache | None] = {}
        for cache_id, name in owner.items():
            cache = entries[name].cache
            # Upserted unless the index holds this very object (a warm start's snapshot,
            # or a version the list has changed, are written).
            if self.index.get(cache_id) is not cache:
                pending[cache_id] = cache
        for held in list(self.index):
            if held.id not in owner:
                pending[held.id] = None  # vanished while the watch was down
        self._entries, self._owner = entries, owner
        self._by_reference = {ref: {n for n in names if n in entries}
                              for ref, names in self._by_reference.items()}
        self._flush(pending)

    def replace(self, items: Iterable[dict[str, Any]]) -> None:
        """Make the state what a full list says: :meth:`page` then :meth:`commit`."""
        self.page(items, first=True)
        self.commit()

    def upgrade(self, refs: Iterable[str]) -> int:
        """Read again the caches listing ``refs`` by reference, now that their layers
        are known; return how many were upgraded."""
        # A fresh reader: the old one remembers these references as unknown.
        self._sets = ImageSets(ImageReader(self._layers))
        pending: dict[str, ImageCache | None] = {}
        for ref in refs:
            names = sorted(self._by_reference.pop(ref, ()))
            if self._aside is not None:  # a list is coming in: its pages are read again too
                for name in names:
                    held = self._aside.get(name)
                    if held is not None and held.cache is not None:
                        self._aside[name] = self._read(name, held.uid, held.version, held.obj)
            for name in names:
                entry = self._entries.get(name)
                if entry is None or entry.cache is None:
                    continue
                fresh = self._read(name, entry.uid, entry.version, entry.obj)
                if fresh.cache != entry.cache:
                    self._put(name, fresh, pending)
        self._flush(pending)
        return sum(1 for cache in pending.values() if cache is not None)


class ProfileStore:
    """The eci-profile as last read well: empty until a ConfigMap says otherwise."""

    def __init__(self, stats: SyncStats) -> None:
        self.profile = EciProfile.empty()
        self._stats = stats
        self._version = ""
        self._pages: list[dict[str, Any]] = []

    def _read(self, obj: dict[str, Any]) -> None:
        _, _, version = _meta(obj)
        try:
            profile = EciProfile.from_configmap(obj)
        except FastmatchError as exc:
            # A bad edit must not take the selectors away from every pod admitted
            # meanwhile: the last good profile stays until a good one comes.
            self._stats.add("profile_errors")
            self._stats.problem(f"eci-profile (resourceVersion {version}) not applied, the "
                                f"last good one kept: {exc}")
            return
        self.profile = profile
        self._version = version

    def page(self, items: list[dict[str, Any]], *, first: bool) -> None:
        """One page of a list (the ConfigMap, if there is one)."""
        self._pages = [*([] if first else self._pages), *items]

    def commit(self) -> None:
        """The list is whole: apply it."""
        self.replace(self._pages)
        self._pages = []

    def replace(self, items: list[dict[str, Any]]) -> None:
        """The ConfigMap as listed (none: no selectors)."""
        if items:
            self._read(items[0])
        else:
            self.profile = EciProfile.empty()

    def apply(self, events: Iterable[Event]) -> int:
        """Watch events of the ConfigMap, in order."""
        applied = 0
        for kind, obj in events:
            applied += 1
            if kind == "DELETED":
                self.profile = EciProfile.empty()
            else:
                self._read(obj)
        return applied


class NamespaceStore:
    """Each namespace's labels, by name (the API server's name label always among them)."""

    def __init__(self) -> None:
        self.labels: dict[str, Mapping[str, str]] = {}
        self._pages: list[dict[str, Any]] = []

    def page(self, items: list[dict[str, Any]], *, first: bool) -> None:
        """One page of the namespaces' list."""
        self._pages = [*([] if first else self._pages), *items]

    def commit(self) -> None:
        """The list is whole: apply it."""
        self.replace(self._pages)
        self._pages = []

    @staticmethod
    def _labels(obj: dict[str, Any]) -> tuple[str, Mapping[str, str]]:
        name, _, _ = _meta(obj)
        meta = obj.get("metadata")
        raw = meta.get("labels") if isinstance(meta, Mapping) else None
        labels = {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)} \
            if isinstance(raw, Mapping) else {}
        return name, {NAMESPACE_NAME_LABEL: name, **labels}

    def get(self, namespace: str) -> Mapping[str, str]:
        """The labels of ``namespace`` (only its name label when it is not known)."""
        found = self.labels.get(namespace)
        return found if found is not None else {NAMESPACE_NAME_LABEL: namespace}

    def replace(self, items: list[dict[str, Any]]) -> None:
        """The namespaces as listed."""
        fresh = dict(self._labels(obj) for obj in items)
        fresh.pop("", None)
        self.labels = fresh

    def apply(self, events: Iterable[Event]) -> int:
        """Watch events of namespaces, in order."""
        labels = dict(self.labels)  # copied, so that readers never see it change under them
        for kind, obj in events:
            name, found = self._labels(obj)
            if kind == "DELETED":
                labels.pop(name, None)
            elif name:
                labels[name] = found
        self.labels = labels
        return 0
