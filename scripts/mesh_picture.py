#!/usr/bin/env python3
"""Draw a wg_netmanager mesh as SVG from the nodes' `status --json` documents.

    python3 scripts/mesh_picture.py -o out/mesh.svg alpha.json beta.json ...

Standard library only, so it runs with any Python 3.9+ (no agent install needed). Nodes sit
on a circle, labelled with name and wgIp (below it, the LAN subnets of a subnet gateway, and
"exit: internet" for an exit node or "internet via NAME" for a node using one). Leaves (agent-less
WireGuard peers, from the nodes' `leaves`) are drawn with a dashed ring, "leaf of HOME" below.
Every pair of nodes gets exactly one edge (two leaves: none, nobody reports on them),
coloured by the path kind (static | lan | nat | gateway | none, the strings of the status
JSON). When the two ends report different kinds, the edge is labelled with both ("nat /
static") and drawn in the colour of the weaker one, so a disagreement is visible rather than
hidden.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

# Path kinds from strongest (direct, configured) to weakest; same strings as PathKind.
KINDS: tuple[str, ...] = ("static", "lan", "nat", "gateway", "none")
COLORS: dict[str, str] = {
    "static": "#1f77b4",
    "lan": "#2ca02c",
    "nat": "#ff7f0e",
    "gateway": "#9467bd",
    "none": "#d62728",
}
DASHES: dict[str, str] = {"gateway": "8,5", "none": "2,4"}
UNKNOWN = "none"

WIDTH, HEIGHT = 760, 620
RADIUS = 210
NODE_R = 34


@dataclass(frozen=True)
class Node:
    name: str
    wg_ip: str
    converged: bool
    subnets: tuple[str, ...] = ()  # LAN subnets it routes into the mesh (a subnet gateway)
    notes: tuple[str, ...] = ()  # more lines below it: exit node, leaf of which home
    leaf: bool = False  # an agent-less WireGuard peer (no status document of its own)

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(f"LAN {s}" for s in self.subnets) + self.notes


@dataclass(frozen=True)
class Edge:
    a: str
    b: str
    kinds: tuple[str, ...]  # the distinct kinds reported by the two ends, strongest first
    gateways: tuple[str, ...]  # relaying nodes named by either end

    @property
    def kind(self) -> str:
        """The weakest reported kind: what the pair can count on in both directions."""
        return self.kinds[-1]

    @property
    def label(self) -> str:
        text = " / ".join(self.kinds)
        if self.gateways:
            text += " via " + ",".join(self.gateways)
        return text


def _kind(value: Any) -> str:
    return value if value in KINDS else UNKNOWN


def mesh_from_status(docs: Sequence[Mapping[str, Any]]) -> tuple[list[Node], list[Edge]]:
    """Nodes (sorted by name) and one edge per unordered pair of all names seen.

    Names seen only as a peer of someone (their own document is missing) are nodes too, so
    a node whose agent is down still shows up, with edges of kind `none` where nobody
    reports a path.
    """
    nodes: dict[str, Node] = {}
    reports: dict[tuple[str, str], tuple[str, str | None]] = {}
    for doc in docs:
        me = str(doc["name"])
        own = (doc.get("subnets") or {}).get("own") or []
        exit_ = doc.get("exitNode") or {}
        notes = ("exit: internet",) if exit_.get("offers") else ()
        if exit_.get("uses") and exit_.get("active"):
            notes += (f"internet via {exit_['uses']}",)
        nodes[me] = Node(me, str(doc.get("wgIp", "?")), bool(doc.get("converged", False)), tuple(own), notes)
        for leaf in doc.get("leaves") or []:
            name = str(leaf["name"])
            note = (f"leaf of {leaf.get('home')}",)
            nodes.setdefault(name, Node(name, str(leaf.get("wgIp", "?")), False, (), note, leaf=True))
            reports[(me, name)] = (_kind(leaf.get("path")), leaf.get("gateway"))
        for peer in doc.get("peers", []):
            other = str(peer["name"])
            if other == me:
                continue
            announced = tuple(str(s) for s in peer.get("subnets") or [])
            nodes.setdefault(other, Node(other, str(peer.get("wgIp", "?")), False, announced))
            reports[(me, other)] = (_kind(peer.get("path")), peer.get("gateway"))
    names = sorted(nodes)
    edges = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if nodes[a].leaf and nodes[b].leaf:
                continue
            seen = [r for r in (reports.get((a, b)), reports.get((b, a))) if r is not None]
            kinds = {k for k, _ in seen} or {UNKNOWN}
            gateways = sorted({str(g) for k, g in seen if k == "gateway" and g})
            edges.append(Edge(a, b, tuple(sorted(kinds, key=KINDS.index)), tuple(gateways)))
    return [nodes[n] for n in names], edges


def _positions(names: Sequence[str]) -> dict[str, tuple[float, float]]:
    cx, cy = WIDTH / 2, HEIGHT / 2 + 10
    n = max(len(names), 1)
    # Start at the top and go clockwise; one node alone sits in the middle.
    if n == 1:
        return {names[0]: (cx, cy)} if names else {}
    return {
        name: (
            cx + RADIUS * math.sin(2 * math.pi * i / n),
            cy - RADIUS * math.cos(2 * math.pi * i / n),
        )
        for i, name in enumerate(names)
    }


def _attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _text(x: float, y: float, body: str, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{_attr(v)}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(body)}</text>'


def render_svg(nodes: Sequence[Node], edges: Sequence[Edge], title: str = "wg_netmanager mesh") -> str:
    pos = _positions([n.name for n in nodes])
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        _text(20, 32, title, font_size="20", font_weight="bold"),
    ]
    agents = [n for n in nodes if not n.leaf]
    summary = f"{len(agents)} nodes, {sum(n.converged for n in agents)} converged"
    if len(agents) < len(nodes):
        count = len(nodes) - len(agents)
        summary += f", {count} {'leaf' if count == 1 else 'leaves'}"
    out.append(_text(20, 54, summary, font_size="13", fill="#555"))
    for e in edges:
        (x1, y1), (x2, y2) = pos[e.a], pos[e.b]
        dash = DASHES.get(e.kind)
        out.append(
            f'<line class="edge" data-a="{_attr(e.a)}" data-b="{_attr(e.b)}" '
            f'data-kind="{e.kind}" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{COLORS[e.kind]}" stroke-width="3"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + "/>"
        )
    for e in edges:
        (x1, y1), (x2, y2) = pos[e.a], pos[e.b]
        # Labels sit a third of the way along, so the two diagonals of a square don't
        # put theirs on top of each other in the middle.
        lx, ly = x1 + (x2 - x1) * 0.36, y1 + (y2 - y1) * 0.36
        w = 7.2 * len(e.label) + 10
        out.append(
            f'<rect x="{lx - w / 2:.1f}" y="{ly - 11:.1f}" width="{w:.1f}" height="20" rx="4" '
            f'fill="white" fill-opacity="0.9" stroke="{COLORS[e.kind]}"/>'
        )
        out.append(
            _text(
                lx,
                ly + 4,
                e.label,
                font_size="12",
                text_anchor="middle",
                fill=COLORS[e.kind],
                **{"class": "edge-label"},
            )
        )
    for n in nodes:
        x, y = pos[n.name]
        ring = "#333" if n.converged or n.leaf else COLORS["none"]
        out.append(
            f'<circle class="{"leaf" if n.leaf else "node"}" cx="{x:.1f}" cy="{y:.1f}" r="{NODE_R}" '
            f'fill="#f4f4f4" stroke="{ring}" stroke-width="2.5"'
            + (' stroke-dasharray="5,3"' if n.leaf else "")
            + "/>"
        )
        out.append(_text(x, y - 2, n.name, font_size="14", font_weight="bold", text_anchor="middle"))
        out.append(_text(x, y + 15, n.wg_ip, font_size="11", text_anchor="middle", fill="#333"))
        for i, line in enumerate(n.lines):  # below the circle: the LANs behind it, exit, leaf
            out.append(
                _text(
                    x,
                    y + NODE_R + 16 + 14 * i,
                    line,
                    font_size="11",
                    text_anchor="middle",
                    fill="#555",
                    **{"class": "subnet" if i < len(n.subnets) else "note", "data-node": n.name},
                )
            )
    out.extend(_legend())
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _legend() -> list[str]:
    x, y = WIDTH - 150, 24
    parts = [
        f'<rect x="{x - 12}" y="{y - 6}" width="140" height="{22 * len(KINDS) + 12}" rx="6" '
        'fill="white" stroke="#bbb"/>'
    ]
    for i, kind in enumerate(KINDS):
        ly = y + 10 + 22 * i
        dash = DASHES.get(kind)
        parts.append(
            f'<line x1="{x}" y1="{ly}" x2="{x + 40}" y2="{ly}" stroke="{COLORS[kind]}" stroke-width="3"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + "/>"
        )
        parts.append(_text(x + 50, ly + 4, kind, font_size="13", **{"class": "legend"}))
    return parts


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("status", nargs="+", type=Path, help="status --json documents, one per node")
    ap.add_argument("-o", "--output", type=Path, required=True, help="SVG file to write")
    ap.add_argument("-t", "--title", default="wg_netmanager mesh")
    args = ap.parse_args(argv)
    docs = []
    for path in args.status:
        try:
            docs.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 2
    nodes, edges = mesh_from_status(docs)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render_svg(nodes, edges, args.title))
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
