"""Figures a lab case measured, kept for bench/faults.py: when the environment names a file
in WGN_FIGURES, `figure()` appends one JSON line to it (the case, the figure's name, its value
and unit); otherwise it does nothing, so the tests print and assert as before."""

from __future__ import annotations

import json
import os

ENV = "WGN_FIGURES"


def figure(case: str, name: str, value: float, unit: str = "s") -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"case": case, "figure": name, "value": round(value, 3), "unit": unit})
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
