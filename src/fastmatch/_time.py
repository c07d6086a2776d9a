"""Points in time: every timestamp fastmatch keeps is an aware UTC datetime."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["EPOCH", "TimeLike", "to_datetime", "to_epoch", "to_micros", "utcnow"]

TimeLike = datetime | int | float | str
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def utcnow() -> datetime:
    """The current time, in UTC."""
    return datetime.now(timezone.utc)


def to_datetime(value: TimeLike, where: str = "time") -> datetime:
    """Read a datetime, epoch seconds or an ISO-8601 / RFC 3339 string as UTC.

    A naive datetime is taken to be UTC.  Raises ``ValueError`` naming
    ``where`` on anything else; callers wrap it in their own error type.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected a time, got {value!r}")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not an ISO-8601 time") from None
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed
    raise ValueError(f"{where}: expected a time, got {type(value).__name__}")


def to_epoch(value: datetime) -> float:
    """Seconds since the epoch of an aware datetime."""
    return value.timestamp()


_MICROSECOND = timedelta(microseconds=1)


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly (no float rounding)."""
    return (value - EPOCH) // _MICROSECOND
