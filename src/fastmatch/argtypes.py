"""The values fastmatch's commands take on their command lines, as argparse ``type=``
callables: each turns the text into its value or raises ``argparse.ArgumentTypeError``
with a message saying what was expected (argparse prefixes the option's name), so that
every command words a bad number or time the same way.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from fastmatch.errors import FastmatchError
from fastmatch.timeutil import to_datetime

__all__ = ["integer", "minutes", "number", "time"]


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer from ``low`` to ``high`` (or ``>= low`` when ``high`` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            # 1,000,000 reads better with its commas; a port number does not.
            top = f"{high:,}" if high is not None and high >= 100_000 else f"{high}"
            bound = f">= {low}" if high is None else f"from {low} to {top}"
            raise argparse.ArgumentTypeError(f"expected an integer {bound}, got {text!r}")
        return value

    return parse


def number(low: float = 0.0, high: float | None = None, *, strict: bool = False,
           unit: str = "") -> Callable[[str], float]:
    """A finite number ``>= low`` (``> low`` when ``strict``), at most ``high`` when
    given; ``unit`` (e.g. ``"seconds"``) is named in the message."""
    what = f"a number of {unit}" if unit else "a number"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if (not math.isfinite(value) or value < low or (strict and value == low)
                or (high is not None and value > high)):
            bound = f"> {_shown(low)}" if strict else f">= {_shown(low)}"
            if high is not None:
                bound += f" and <= {_shown(high)}"
            raise argparse.ArgumentTypeError(f"expected {what} {bound}, got {text!r}")
        return value

    return parse


def _shown(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


_MINUTES = number(unit="minutes")


def minutes(text: str) -> timedelta:
    """A duration in minutes (a finite number >= 0)."""
    return timedelta(minutes=_MINUTES(text))


def time(text: str) -> datetime:
    """A moment in ISO 8601 (``2026-12-01T00:00:00Z``; no zone means UTC)."""
    try:
        return to_datetime(text, "--now")
    except FastmatchError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 time such as 2026-12-01T00:00:00Z, got {text!r}"
        ) from None
