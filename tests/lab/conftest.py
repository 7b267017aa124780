"""Shared lab fixtures: `make_lab` (one lab per test) and `module_lab` (labs shared by the tests
of a module). Both tear every lab down afterwards, also on failure or Ctrl-C.

    def test_x(make_lab):
        lab = make_lab("seed-basic")
        lab.host("charlie").run(["ping", "-c1", "198.51.100.2"])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from labkit import LabFactory  # noqa: E402
from meshlab import Mesh


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


@pytest.fixture
def mesh_on(make_lab: LabFactory) -> Iterator[Any]:
    """`mesh_on("seed-basic")`: a lab with an agent on every mesh host, all answering their
    status sockets; `mesh_on(topology, hosts, cls=SomeMesh)` for fewer hosts or other
    configs and command lines. Every agent is stopped afterwards."""
    meshes: list[Mesh] = []

    def start(topology: str, hosts: list[str] | None = None, cls: type[Mesh] = Mesh) -> Mesh:
        mesh = cls(make_lab(topology), hosts)
        meshes.append(mesh)
        mesh.start_all()
        mesh.wait_started()
        return mesh

    try:
        yield start
    finally:
        for mesh in meshes:
            mesh.close()
