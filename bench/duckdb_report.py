"""The alternative a data engineer would write to ``fastmatch report``: the decisions in DuckDB SQL.

From the same JSON files (``kubectl get imagecaches -o json``, the workloads,
the catalog) to each pod's decision: the cache used (or none, or the named cache
refused), how many of its images are fully cached and the bytes covered,
written as well as DuckDB allows:

- identical pod specs are folded before any SQL (a workload's replicas, and
  workloads asking for the same images the same way, are one row);
- layer digests are interned to integers while loading, and the tables reach
  DuckDB as NumPy columns (no row-by-row inserts);
- containment (does a cache hold every layer of an image?) is tested only on
  the caches that hold the image's rarest layer, then counted with one join;
- the choice is ECI's order, one window function: images fully cached, bytes
  covered, closest size, newest, then id.

What it leaves out, as the synthetic cluster needs none of it: images known by
reference only, platforms and storage limits, the proposals of caches to
create.  :func:`check_same` holds it to fastmatch's decisions pod for pod.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

import fastmatch as fm

AUTO_PREFIX = "auto-create-for-"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

Decision = tuple[str, str | None, int, int]  # outcome, cache id, full, covered

_SQL = """
WITH layer_freq AS (
    SELECT layer, count(*) AS n FROM cache_layers GROUP BY layer
),
-- Each pod image's rarest layer among the usable caches: its holders are among them.
rarest AS (
    SELECT il.image, arg_min(il.layer, coalesce(f.n, 0)) AS layer, count(*) AS n_layers
    FROM image_layers il LEFT JOIN layer_freq f ON f.layer = il.layer
    GROUP BY il.image
),
probe AS (
    SELECT r.image, cl.cache, r.n_layers
    FROM rarest r JOIN cache_layers cl ON cl.layer = r.layer
),
holders AS (
    SELECT p.image, p.cache
    FROM probe p
    JOIN image_layers il ON il.image = p.image
    JOIN cache_layers cl ON cl.cache = p.cache AND cl.layer = il.layer
    GROUP BY p.image, p.cache
    HAVING count(*) = any_value(p.n_layers)
),
fulls AS (
    SELECT si.spec, h.cache, count(*) AS n_full
    FROM spec_images si JOIN holders h ON h.image = si.image
    GROUP BY si.spec, h.cache
),
eligible AS (
    SELECT f.spec, f.cache, f.n_full
    FROM fulls f JOIN specs s ON s.spec = f.spec
    WHERE s.named < 0 AND f.n_full >= s.bar
),
scored AS (
    SELECT e.spec, e.cache, any_value(e.n_full) AS n_full, sum(ls.size) AS covered
    FROM eligible e
    JOIN spec_layers sl ON sl.spec = e.spec
    JOIN cache_layers cl ON cl.cache = e.cache AND cl.layer = sl.layer
    JOIN layer_sizes ls ON ls.layer = sl.layer
    GROUP BY e.spec, e.cache
),
ranked AS (
    SELECT sc.spec, sc.cache, sc.n_full, sc.covered,
           row_number() OVER (
               PARTITION BY sc.spec
               ORDER BY sc.n_full DESC, sc.covered DESC, abs(c.bytes - s.bytes) ASC,
                        c.created DESC, c.id ASC) AS place
    FROM scored sc JOIN caches c ON c.cache = sc.cache JOIN specs s ON s.spec = sc.spec
)
SELECT spec, cache, n_full, covered FROM ranked WHERE place = 1
"""

# A named cache, when usable, is used whatever it holds: its own full and covered.
_NAMED_SQL = """
SELECT s.spec,
       (SELECT count(*) FROM spec_images si
          WHERE si.spec = s.spec AND NOT EXISTS (
              SELECT 1 FROM image_layers il WHERE il.image = si.image
              AND NOT EXISTS (SELECT 1 FROM all_cache_layers cl
                              WHERE cl.cache = s.named AND cl.layer = il.layer))) AS n_full,
       (SELECT coalesce(sum(ls.size), 0) FROM spec_layers sl
          JOIN all_cache_layers cl ON cl.cache = s.named AND cl.layer = sl.layer
          JOIN layer_sizes ls ON ls.layer = sl.layer
          WHERE sl.spec = s.spec) AS covered
FROM specs s WHERE s.named >= 0 AND s.named_usable
"""


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _us(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


class Tables:
    """The files loaded into DuckDB: what the SQL reads, and how pods map to specs."""

    def __init__(self, caches: Path, workloads: Path, catalog: Path, now: datetime) -> None:
        with catalog.open() as lines:
            entries = [json.loads(line) for line in lines]
        with caches.open() as f:
            cache_list = json.load(f)
        with workloads.open() as f:
            workload_list = json.load(f)
        self._load(cache_list, workload_list, entries, now)

    @classmethod
    def from_documents(cls, caches: dict[str, Any], workloads: dict[str, Any],
                       catalog: list[dict[str, Any]], now: datetime) -> Tables:
        """The tables of the files' parsed documents (the two ``List`` objects and the
        catalog's lines), already in memory."""
        tables = cls.__new__(cls)
        tables._load(caches, workloads, catalog, now)
        return tables

    def _load(self, caches: dict[str, Any], workloads: dict[str, Any],
              catalog: list[dict[str, Any]], now: datetime) -> None:
        layer_ids: dict[str, int] = {}
        sizes: list[int] = []
        image_ids: dict[str, int] = {}
        image_layers: list[list[int]] = []
        for doc in catalog:
            ids = []
            for la in doc["layers"]:
                lid = layer_ids.get(la["digest"])
                if lid is None:
                    lid = layer_ids[la["digest"]] = len(sizes)
                    sizes.append(la["size"])
                ids.append(lid)
            image_ids[doc["ref"]] = len(image_layers)
            image_layers.append(sorted(set(ids)))
        items = caches["items"]
        self.cache_ids: list[str] = []
        cache_row: dict[str, int] = {}
        usable: list[bool] = []
        created: list[int] = []
        cbytes: list[int] = []
        cl_cache: list[int] = []
        cl_layer: list[int] = []
        for item in items:
            meta, spec, status = item["metadata"], item["spec"], item.get("status", {})
            cid = status.get("imageCacheId") or meta["name"]
            made = _time(meta["creationTimestamp"])
            assert made is not None
            expiries = []
            if spec.get("retentionDays") is not None:
                expiries.append(made + timedelta(days=spec["retentionDays"]))
            if status.get("expireDateTime"):
                expiries.append(_time(status["expireDateTime"]))
            if meta["name"].startswith(AUTO_PREFIX):  # auto-created, never matched: 7 days
                expiries.append(made + timedelta(days=7))
            if status.get("phase") == "Failed":
                expiries.append(made + timedelta(days=1))
            alive = all(at > now for at in expiries if at is not None)
            row = len(self.cache_ids)
            cache_row[cid] = row
            self.cache_ids.append(cid)
            usable.append(status.get("phase") == "Ready" and alive)
            created.append(_us(made))
            held = sorted({lid for ref in spec["images"] for lid in image_layers[image_ids[ref]]})
            cbytes.append(sum(sizes[lid] for lid in held))
            cl_cache.extend([row] * len(held))
            cl_layer.extend(held)
        docs = workloads["items"]
        # Fold identical pod specs: (images, policy) once, however many pods ask for it.
        spec_of: dict[tuple[Any, ...], int] = {}
        self.pod_spec: list[int] = []
        specs: list[tuple[tuple[int, ...], int, int, bool]] = []
        for doc in docs:
            template = doc["spec"]["template"]
            ann = template["metadata"].get("annotations") or {}
            refs = tuple(dict.fromkeys(c["image"] for c in template["spec"]["containers"]))
            key = (refs, ann.get("k8s.aliyun.com/imc-perfect-match"),
                   ann.get("k8s.aliyun.com/imc-match-count-request"),
                   ann.get("k8s.aliyun.com/eci-imc-id"))
            sid = spec_of.get(key)
            if sid is None:
                sid = spec_of[key] = len(specs)
                images = tuple(image_ids[r] for r in refs)
                n = len(images)
                if (key[1] or "").lower() == "true":
                    bar = n
                elif key[2] is not None:
                    bar = min(int(key[2]), n)
                else:
                    bar = 1
                named = cache_row.get(key[3], -2) if key[3] is not None else -1
                specs.append((images, bar, named, named >= 0 and usable[named]))
            self.pod_spec.extend([sid] * doc["spec"].get("replicas", 1))
        self.named_ids = [key[3] for key in spec_of]
        si_spec, si_image, sl_spec, sl_layer = [], [], [], []
        spec_bytes = []
        for sid, (images, _, _, _) in enumerate(specs):
            si_spec.extend([sid] * len(images))
            si_image.extend(images)
            layers = sorted({lid for i in images for lid in image_layers[i]})
            sl_spec.extend([sid] * len(layers))
            sl_layer.extend(layers)
            spec_bytes.append(sum(sizes[lid] for lid in layers))
        pod_images = sorted(set(si_image))
        il_image = [i for i in pod_images for _ in image_layers[i]]
        il_layer = [lid for i in pod_images for lid in image_layers[i]]
        self.spec_images_count = [len(s[0]) for s in specs]
        self.specs = specs
        ok = np.asarray(usable, dtype=bool)
        cl_c = np.asarray(cl_cache, dtype=np.int64)
        cl_l = np.asarray(cl_layer, dtype=np.int64)
        keep = ok[cl_c] if len(cl_c) else np.zeros(0, dtype=bool)
        self.con = con = duckdb.connect()
        con.execute("SET threads = 2")
        con.register("layer_sizes", {"layer": np.arange(len(sizes)),
                                     "size": np.asarray(sizes, dtype=np.int64)})
        con.register("image_layers", {"image": np.asarray(il_image, dtype=np.int64),
                                      "layer": np.asarray(il_layer, dtype=np.int64)})
        con.register("cache_layers", {"cache": cl_c[keep], "layer": cl_l[keep]})
        con.register("all_cache_layers", {"cache": cl_c, "layer": cl_l})
        con.register("caches", {"cache": np.arange(len(self.cache_ids)),
                                "id": np.asarray(self.cache_ids, dtype=object),
                                "created": np.asarray(created, dtype=np.int64),
                                "bytes": np.asarray(cbytes, dtype=np.int64)})
        con.register("specs", {"spec": np.arange(len(specs)),
                               "bar": np.asarray([s[1] for s in specs], dtype=np.int64),
                               "named": np.asarray([s[2] for s in specs], dtype=np.int64),
                               "named_usable": np.asarray([s[3] for s in specs], dtype=bool),
                               "bytes": np.asarray(spec_bytes, dtype=np.int64)})
        con.register("spec_images", {"spec": np.asarray(si_spec, dtype=np.int64),
                                     "image": np.asarray(si_image, dtype=np.int64)})
        con.register("spec_layers", {"spec": np.asarray(sl_spec, dtype=np.int64),
                                     "layer": np.asarray(sl_layer, dtype=np.int64)})

    def decide(self) -> list[Decision]:
        """Every pod's decision, in input order (replicas expanded)."""
        by_spec: list[Decision] = []
        for sid, (_, _, named, _) in enumerate(self.specs):
            if named == -1:
                by_spec.append(("none", None, 0, 0))
            else:  # refused unless found usable below
                by_spec.append(("reject", self.named_ids[sid], 0, 0))
        for sid, cache, full, covered in self.con.execute(_SQL).fetchall():
            by_spec[sid] = ("use", self.cache_ids[cache], int(full), int(covered))
        for sid, full, covered in self.con.execute(_NAMED_SQL).fetchall():
            by_spec[sid] = ("use", self.cache_ids[self.specs[sid][2]], int(full), int(covered))
        return [by_spec[s] for s in self.pod_spec]


def decide_with_duckdb(caches: Path, workloads: Path, catalog: Path,
                       now: datetime) -> list[Decision]:
    """From the JSON files to every pod's decision, in DuckDB."""
    return Tables(caches, workloads, catalog, now).decide()


def decide_documents_with_duckdb(caches: dict[str, Any], workloads: dict[str, Any],
                                 catalog: list[dict[str, Any]], now: datetime) -> list[Decision]:
    """From the files' parsed documents, already in memory, to every pod's decision."""
    return Tables.from_documents(caches, workloads, catalog, now).decide()


def fastmatch_decisions(results: list[fm.MatchResult]) -> list[Decision]:
    """fastmatch's results in the alternative's terms."""
    return [(r.outcome, r.cache_id, r.full, r.covered) for r in results]


def check_same(duck: list[Decision], results: list[fm.MatchResult]) -> None:
    """Raise ``AssertionError`` naming the first pod the two decide differently."""
    ours = fastmatch_decisions(results)
    assert len(duck) == len(ours), (len(duck), len(ours))
    for i, (a, b) in enumerate(zip(duck, ours)):
        assert a == b, f"pod {i}: DuckDB decided {a}, fastmatch {b}"
