"""``fastmatch report``'s engine: a whole cluster's pods and caches at once (SPEC §11).

An adapter: it takes the pods (:class:`~fastmatch.inputs.PodRequest`), the
caches (a :class:`~fastmatch.CacheIndex`) and their decisions from whoever
runs it, and says what they add up to.

- :func:`build_report`, :class:`ClusterReport`: the summary, what each cache
  served, and the recommendations (:mod:`.aggregate`, :mod:`.recommend`:
  caches to create, chosen greedily with the ``1 - 1/e`` guarantee of
  maximum coverage, and caches to delete);
- :func:`simulate`, :func:`read_history`: ECI's auto-create lifecycle over a
  pod history, the hit rate by day;
- :func:`write_table`, :func:`write_json`, :func:`write_csv`,
  :func:`write_html`: the outputs;
- :func:`decide_in_parts`, :func:`decide_on_dask`: the pods decided in parts
  (a progress bar) or across a Dask cluster, the same results as one batch.

The charts (plotly) and the Dask client (``distributed``) are imported when
first used, from the ``report`` and ``dask`` extras.
"""

from fastmatch.report.aggregate import DEFAULT_BANDWIDTH, CacheUse, PodGroup, Summary
from fastmatch.report.cluster_report import ClusterReport, build_report
from fastmatch.report.distribute import (
    decide_in_parts,
    decide_on_dask,
    split_by_image_set,
)
from fastmatch.report.errors import DaskError, ReportError, ReportExtraError
from fastmatch.report.formats import write_csv, write_json, write_table
from fastmatch.report.html import write_html
from fastmatch.report.recommend import (
    GREEDY_GUARANTEE,
    CreateRecommendation,
    DeleteRecommendation,
    recommend_create,
    recommend_delete,
)
from fastmatch.report.simulate import DayRate, TimedPod, read_history, simulate

__all__ = [
    "DEFAULT_BANDWIDTH",
    "GREEDY_GUARANTEE",
    "CacheUse",
    "ClusterReport",
    "CreateRecommendation",
    "DaskError",
    "DayRate",
    "DeleteRecommendation",
    "PodGroup",
    "ReportError",
    "ReportExtraError",
    "Summary",
    "TimedPod",
    "build_report",
    "decide_in_parts",
    "decide_on_dask",
    "read_history",
    "recommend_create",
    "recommend_delete",
    "simulate",
    "split_by_image_set",
    "write_csv",
    "write_html",
    "write_json",
    "write_table",
]
