"""The report's errors: one root, one class per kind of failure."""

from __future__ import annotations

from fastmatch.errors import FastmatchError

__all__ = ["DaskError", "ReportError", "ReportExtraError"]


class ReportError(FastmatchError):
    """Base of the errors ``fastmatch report`` raises beyond bad input files."""


class DaskError(ReportError):
    """The Dask cluster cannot be reached or used (its address, or a worker's failure)."""


class ReportExtraError(ReportError):
    """A part of the report needs an extra that is not installed (the HTML: ``report``;
    ``--dask``: ``dask``)."""
