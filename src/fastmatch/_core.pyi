# What the compiled core exports (see _core.pyx); kept by hand, as pandas does.
from collections.abc import Iterable, Sequence
from typing import Any

import numpy.typing as npt

NEVER: int

class _Batch:
    def __len__(self) -> int: ...

_Scored = tuple[list[Any], int, int, int]

class Core:
    def __init__(self) -> None: ...
    def __len__(self) -> int: ...
    @property
    def layers(self) -> int: ...
    @property
    def pairs(self) -> int: ...
    @property
    def strategy(self) -> str: ...
    @strategy.setter
    def strategy(self, value: str) -> None: ...
    def nbytes(self) -> int: ...
    def replace(
        self,
        slot: int,
        obj: Any,
        keys: Iterable[str],
        images: Iterable[Iterable[str]],
        nbytes: int,
        created: int,
        expires: int,
        size_gib: int,
        arch: str | None = None,
        os: str | None = None,
    ) -> int: ...
    def build(
        self,
        objs: list[Any],
        keys: list[Iterable[str]],
        images: list[Sequence[Iterable[str]]],
        nbytes: list[int],
        created: list[int],
        expires: list[int],
        size_gib: list[int],
        arch: list[str | None],
        os: list[str | None],
    ) -> None: ...
    def remove(self, slot: int) -> None: ...
    def compact(self) -> None: ...
    def check(self) -> None: ...
    def new_batch(self) -> _Batch: ...
    def encode(
        self,
        batch: _Batch,
        images: list[dict[str, int]],
        bar: int,
        storage: float | None,
        arch: str | None,
        os: str | None,
    ) -> int: ...
    def score_batch(self, batch: _Batch, now: int, threads: int = 1) -> list[_Scored]: ...
    def score_one(
        self,
        images: list[dict[str, int]],
        bar: int,
        storage: float | None,
        arch: str | None,
        os: str | None,
        now: int,
    ) -> tuple[list[Any], int, int, int, int]: ...
    def score_slot(
        self, slot: int, obj: Any, images: list[dict[str, int]]
    ) -> tuple[int, int, int, int] | None: ...
    def to_arrays(
        self,
    ) -> tuple[dict[str, npt.NDArray[Any]], list[str], list[str], list[Any]]: ...
    @staticmethod
    def from_arrays(
        arrays: dict[str, npt.NDArray[Any]],
        keys: list[str],
        platforms: list[str],
        objs: list[Any],
    ) -> Core: ...

__all__ = ["NEVER", "Core"]

def replicas(pods: list[list[Any]], policies: list[Any]) -> tuple[list[int], list[int]]: ...
