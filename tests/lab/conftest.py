"""Shared lab fixtures: `make_lab` (one lab per test) and `module_lab` (labs shared by the tests
of a module). Both tear every lab down afterwards, also on failure or Ctrl-C.

    def test_x(make_lab):
        lab = make_lab("seed-basic")
        lab.host("charlie").run(["ping", "-c1", "198.51.100.2"])
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from labkit import LabFactory  # noqa: E402


@pytest.fixture
def make_lab() -> Iterator[LabFactory]:
    factory = LabFactory()
    try:
        yield factory
    finally:
        factory.down_all()


@pytest.fixture(scope="module")
def module_lab() -> Iterator[LabFactory]:
    factory = LabFactory()
    try:
        yield factory
    finally:
        factory.down_all()
