"""The errors of the cluster adapter, under :class:`~fastmatch.errors.FastmatchError`."""

from __future__ import annotations

from fastmatch.errors import FastmatchError

__all__ = ["KubeConfigError", "KubeError"]


class KubeError(FastmatchError):
    """Base of what :mod:`fastmatch.kube` raises."""


class KubeConfigError(KubeError):
    """No way to reach the API server: no in-cluster config and no usable kubeconfig, or
    options that cannot work (a page size below 1, a timeout that is not positive)."""
