"""The examples in the README and in docstrings run as written."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import fastmatch.imageref
import fastmatch.index
import fastmatch.policy
import fastmatch.result

ROOT = Path(__file__).resolve().parent.parent
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_readme_examples_run():
    failures, tried = doctest.testfile(str(ROOT / "README.md"), module_relative=False,
                                       optionflags=FLAGS)
    assert tried >= 8 and failures == 0


@pytest.mark.parametrize("module", [fastmatch.imageref, fastmatch.index, fastmatch.policy,
                                    fastmatch.result])
def test_docstring_examples_run(module):
    failures, tried = doctest.testmod(module, optionflags=FLAGS)
    assert tried >= 1 and failures == 0
