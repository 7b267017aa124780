"""scripts/mesh_picture.py: status documents in, one well-formed SVG out."""

from __future__ import annotations

import importlib.util
import json
import sys
import xml.etree.ElementTree as ET
from itertools import combinations
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "mesh_picture.py"
SVG = "{http://www.w3.org/2000/svg}"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mesh_picture", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["mesh_picture"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


mp = _load()

IPS = {"alpha": "10.1.1.1", "beta": "10.1.1.2", "charlie": "10.1.1.3", "delta": "10.1.1.4"}


def _doc(name: str, paths: dict[str, str], gateway: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "wgIp": IPS[name],
        "converged": all(p != "none" for p in paths.values()),
        "peers": [
            {"name": p, "wgIp": IPS[p], "path": k, "gateway": (gateway or {}).get(p)}
            for p, k in paths.items()
        ],
    }


def _seed() -> list[dict[str, Any]]:
    """The seed mesh, with every path kind once (alpha-charlie relayed by beta)."""
    return [
        _doc("alpha", {"beta": "static", "charlie": "gateway", "delta": "nat"}, {"charlie": "beta"}),
        _doc("beta", {"alpha": "static", "charlie": "nat", "delta": "nat"}),
        _doc("charlie", {"alpha": "gateway", "beta": "static", "delta": "lan"}, {"alpha": "beta"}),
        _doc("delta", {"alpha": "nat", "beta": "static", "charlie": "lan"}),
    ]


def _svg(docs: list[dict[str, Any]]) -> ET.Element:
    nodes, edges = mp.mesh_from_status(docs)
    return ET.fromstring(mp.render_svg(nodes, edges))


def _edges(root: ET.Element) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}line") if e.get("class") == "edge"]


def test_valid_xml_with_one_edge_per_pair() -> None:
    root = _svg(_seed())
    assert root.tag == f"{SVG}svg"
    pairs = [frozenset((e.get("data-a"), e.get("data-b"))) for e in _edges(root)]
    assert sorted(map(sorted, pairs)) == sorted(map(sorted, map(frozenset, combinations(IPS, 2))))


def test_edge_kinds_and_labels() -> None:
    root = _svg(_seed())
    kinds = {(e.get("data-a"), e.get("data-b")): e.get("data-kind") for e in _edges(root)}
    assert kinds == {
        ("alpha", "beta"): "static",
        ("alpha", "charlie"): "gateway",
        ("alpha", "delta"): "nat",
        ("beta", "charlie"): "nat",  # the two ends disagree: the weaker kind wins the colour
        ("beta", "delta"): "nat",
        ("charlie", "delta"): "lan",
    }
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "edge-label"]
    assert sorted(labels) == sorted(
        ["static", "gateway via beta", "nat", "static / nat", "static / nat", "lan"]
    )
    colors = {e.get("data-kind"): e.get("stroke") for e in _edges(root)}
    assert len(set(colors.values())) == len(colors)  # one colour per kind


def test_nodes_labelled_with_name_and_wg_ip_and_legend_lists_every_kind() -> None:
    root = _svg(_seed())
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for name, ip in IPS.items():
        assert name in texts and ip in texts
    legend = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "legend"]
    assert legend == ["static", "lan", "nat", "gateway", "none"]


def test_a_subnet_gateways_lans_are_shown_under_it() -> None:
    docs = _seed()
    docs[3]["subnets"] = {"own": ["192.168.50.0/24", "172.16.0.0/12"], "routes": [], "refused": []}
    lans = [(t.get("data-node"), t.text) for t in _svg(docs).iter(f"{SVG}text") if t.get("class") == "subnet"]
    assert lans == [("delta", "LAN 192.168.50.0/24"), ("delta", "LAN 172.16.0.0/12")]
    # a gateway whose own document is missing: what its peers say it announces
    docs = docs[:3]
    docs[0]["peers"][2]["subnets"] = ["192.168.50.0/24"]
    lans = [(t.get("data-node"), t.text) for t in _svg(docs).iter(f"{SVG}text") if t.get("class") == "subnet"]
    assert lans == [("delta", "LAN 192.168.50.0/24")]


def test_missing_node_and_unknown_path_are_none() -> None:
    # delta's agent is down: only the others report it, one of them with a path we don't know.
    docs = [d for d in _seed() if d["name"] != "delta"]
    docs[0]["peers"][2]["path"] = "martian"
    docs[1]["peers"] = [p for p in docs[1]["peers"] if p["name"] != "delta"]
    nodes, edges = mp.mesh_from_status(docs)
    assert [n.name for n in nodes] == ["alpha", "beta", "charlie", "delta"]
    assert not next(n for n in nodes if n.name == "delta").converged
    by_pair = {(e.a, e.b): e for e in edges}
    assert by_pair[("alpha", "delta")].kind == "none"
    assert by_pair[("beta", "delta")].kinds == ("none",)  # nobody reports it
    assert by_pair[("charlie", "delta")].kind == "lan"


def test_names_are_escaped() -> None:
    docs = [
        {
            "name": "a<&>",
            "wgIp": "10.1.1.1",
            "converged": True,
            "peers": [{"name": 'b"', "wgIp": "10.1.1.2", "path": "lan", "gateway": None}],
        },
    ]
    root = _svg(docs)
    assert {t.text for t in root.iter(f"{SVG}text")} >= {"a<&>", 'b"'}


def test_cli_writes_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = []
    for doc in _seed():
        f = tmp_path / f"{doc['name']}.json"
        f.write_text(json.dumps(doc))
        files.append(str(f))
    out = tmp_path / "pic" / "mesh.svg"
    assert mp.main(["-o", str(out), *files]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert len(_edges(ET.fromstring(out.read_text()))) == 6


def test_cli_bad_json_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert mp.main(["-o", str(tmp_path / "x.svg"), str(bad)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def _notes(root: ET.Element) -> list[tuple[str | None, str | None]]:
    return [(t.get("data-node"), t.text) for t in root.iter(f"{SVG}text") if t.get("class") == "note"]


def test_leaves_are_dashed_nodes_joined_to_the_mesh_through_their_home() -> None:
    docs = _seed()
    for doc in docs:
        home = doc["name"] == "beta"
        doc["leaves"] = [
            {"name": "phone", "wgIp": "10.1.1.50", "home": "beta", "path": "nat" if home else "gateway"}
            | ({} if home else {"gateway": "beta"}),
            {"name": "tablet", "wgIp": "10.1.1.51", "home": "beta", "path": "none" if home else "gateway"}
            | ({} if home else {"gateway": "beta"}),
        ]
    nodes, edges = mp.mesh_from_status(docs)
    assert [n.name for n in nodes if n.leaf] == ["phone", "tablet"]
    by_pair = {(e.a, e.b): e for e in edges}
    assert ("phone", "tablet") not in by_pair  # nobody reports on two leaves
    assert by_pair[("beta", "phone")].kind == "nat"
    assert by_pair[("alpha", "phone")].label == "gateway via beta"
    assert by_pair[("beta", "tablet")].kind == "none"
    root = ET.fromstring(mp.render_svg(nodes, edges))
    leaves = [c for c in root.iter(f"{SVG}circle") if c.get("class") == "leaf"]
    assert len(leaves) == 2 and all(c.get("stroke-dasharray") for c in leaves)
    assert ("phone", "leaf of beta") in _notes(root)
    summary = [t.text for t in root.iter(f"{SVG}text")][1]
    assert summary == "4 nodes, 4 converged, 2 leaves"


def test_an_exit_node_and_who_uses_it_are_noted() -> None:
    docs = _seed()
    docs[1]["exitNode"] = {"offers": True, "uses": None, "active": False}
    docs[0]["exitNode"] = {"offers": False, "uses": "beta", "active": True}
    docs[2]["exitNode"] = {"offers": False, "uses": "beta", "active": False}  # not reached: no note
    assert _notes(_svg(docs)) == [("alpha", "internet via beta"), ("beta", "exit: internet")]
