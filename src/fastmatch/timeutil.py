"""Points in time: every timestamp fastmatch keeps is an aware UTC datetime."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from time import time_ns

from fastmatch.errors import ValidationError

__all__ = ["EPOCH", "TimeLike", "from_micros", "micros_at", "to_datetime", "to_micros", "utcnow"]

TimeLike = datetime | int | float | str
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def utcnow() -> datetime:
    """The current time, in UTC."""
    return datetime.now(timezone.utc)


def to_datetime(value: TimeLike, where: str = "time") -> datetime:
    """Read a datetime, epoch seconds or an ISO-8601 / RFC 3339 string as UTC.

    A naive datetime is taken to be UTC.  Anything else raises
    :class:`~fastmatch.errors.ValidationError` naming ``where``.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    if isinstance(value, bool):
        raise ValidationError(f"{where}: expected a time, got {value!r}")
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, timezone.utc)
        except (ValueError, OverflowError, OSError) as exc:
            # Epoch seconds out of range, or NaN, fail inside datetime without ``where``.
            raise ValidationError(f"{where}: {value!r} is not a valid time ({exc})") from None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(f"{where}: {value!r} is not an ISO-8601 time") from None
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed
    raise ValidationError(f"{where}: expected a time, got {type(value).__name__}")


_MICROSECOND = timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime ``micros`` microseconds after the epoch."""
    return EPOCH + timedelta(microseconds=micros)


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly (no float rounding)."""
    return (value - EPOCH) // _MICROSECOND


# The last datetime read by micros_at and its micros: callers pass the same
# ``now`` to many matches.  Datetimes are immutable, so identity is enough.
_last: tuple[object, int] = (None, 0)


def micros_at(value: TimeLike | None, where: str = "now") -> int:
    """``to_micros(to_datetime(value, where))``, or the current time's if ``value`` is None.

    Fast for what matching is called with: nothing, or the same datetime again.
    """
    global _last
    if value is None:
        return time_ns() // 1000
    last = _last
    if value is last[0]:
        return last[1]
    if type(value) is datetime and value.tzinfo is not None:
        micros = (value - EPOCH) // _MICROSECOND
        _last = (value, micros)
        return micros
    return to_micros(to_datetime(value, where))
