"""Reading ping's output: what the lab tests print and assert about losses."""

from __future__ import annotations

import re


def losses(out: str) -> tuple[int, int, int]:
    """(sent, lost, longest run lost) from the output of `ping -n` ended by SIGINT.

    The last request sent is not counted as lost: SIGINT may come before its reply does."""
    seqs = sorted({int(s) for s in re.findall(r"icmp_seq=(\d+)", out)})
    sent = int(m.group(1)) if (m := re.search(r"(\d+) packets transmitted", out)) else 0
    if not seqs:
        return sent, sent, sent
    gaps = [b - a - 1 for a, b in zip([0, *seqs], [*seqs, max(sent, seqs[-1] + 1)])]
    return sent, sum(gaps), max(gaps)
