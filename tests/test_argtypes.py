"""The command-line values every command shares (fastmatch.argtypes): what each accepts, and
the message argparse prints for what it does not."""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta, timezone

import pytest

from fastmatch import argtypes


@pytest.mark.parametrize(("parse", "text", "message"), [
    (argtypes.integer(0, 65535), "99999", "expected an integer from 0 to 65535, got '99999'"),
    (argtypes.integer(1, 1_000_000), "0", "expected an integer from 1 to 1,000,000, got '0'"),
    (argtypes.integer(0), "-1", "expected an integer >= 0, got '-1'"),
    (argtypes.integer(0), "1.5", "expected an integer, got '1.5'"),
    (argtypes.number(strict=True, unit="MB/s"), "0", "expected a number of MB/s > 0, got '0'"),
    (argtypes.number(strict=True, unit="MB/s"), "inf", "expected a number of MB/s > 0"),
    (argtypes.number(strict=True, unit="MB/s"), "nan", "expected a number of MB/s > 0"),
    (argtypes.number(0, 1e6, strict=True, unit="seconds"), "2e6",
     "expected a number of seconds > 0 and <= 1,000,000, got '2e6'"),
    (argtypes.number(), "fast", "expected a number, got 'fast'"),
    (argtypes.minutes, "-5", "expected a number of minutes >= 0, got '-5'"),
    (argtypes.time, "next tuesday", "expected an ISO-8601 time such as 2026-12-01T00:00:00Z"),
])
def test_a_bad_value_says_what_was_expected(parse, text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="^" + re.escape(message)):
        parse(text)


def test_good_values_are_read() -> None:
    assert argtypes.integer(0, 65535)("8443") == 8443
    assert argtypes.number(strict=True)("0.5") == 0.5
    assert argtypes.number()("0") == 0.0
    assert argtypes.minutes("90") == timedelta(minutes=90)
    assert argtypes.time("2026-12-01T00:00:00Z") == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert argtypes.time("2026-12-01T08:00:00+08:00") == datetime(2026, 12, 1, tzinfo=timezone.utc)


def test_argparse_names_the_option() -> None:
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--port", type=argtypes.integer(0, 65535))
    with pytest.raises(argparse.ArgumentError, match="--port"):
        parser.parse_args(["--port", "x"])
