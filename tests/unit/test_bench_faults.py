"""bench/faults.py's table and the figures the lab's fault cases keep for it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests" / "lab")]

import faults  # noqa: E402
import figures  # noqa: E402


def test_figures_are_kept_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "f.jsonl"
    monkeypatch.delenv(figures.ENV, raising=False)
    figures.figure("case", "heals", 1.0)
    assert not out.exists()
    monkeypatch.setenv(figures.ENV, str(out))
    figures.figure("case", "heals", 1.23456)
    figures.figure("case", "pings lost", 7, "pings")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [
        {"case": "case", "figure": "heals", "value": 1.235, "unit": "s"},
        {"case": "case", "figure": "pings lost", "value": 7, "unit": "pings"},
    ]


def test_the_table_gives_each_case_one_line_with_its_spread() -> None:
    rows = [{"case": "kill", "figure": "heals", "value": v, "unit": "s"} for v in (1.0, 2.5, 1.2)]
    rows += [{"case": "kill", "figure": "lost", "value": v, "unit": "pings"} for v in (3, 4, 9)]
    rows += [{"case": "second agent", "figure": "lost", "value": 0, "unit": "pings"}]
    lines = faults.table(rows, 3).splitlines()
    assert lines[2] == "| kill | 3/3 | heals 1.0-2.5 (1.2) s; lost 3-9 (4) |"
    assert lines[3] == "| second agent | 1/3 | lost 0 |"
