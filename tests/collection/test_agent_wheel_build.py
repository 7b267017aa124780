"""roles/agent/files/build_agent_wheel.py: the version a build gets (the build itself runs in
test_agent_install.py, on the controller side of a real install)."""

from __future__ import annotations

import importlib.util

import pytest
from collection_paths import COLLECTION_ROOT

pytestmark = pytest.mark.collection

_spec = importlib.util.spec_from_file_location(
    "build_agent_wheel", COLLECTION_ROOT / "roles" / "agent" / "files" / "build_agent_wheel.py"
)
assert _spec is not None and _spec.loader is not None
build_agent_wheel = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_agent_wheel)


def test_set_version_changes_only_the_projects_version() -> None:
    text = '[build-system]\nrequires = ["x"]\n\n[project]\nname = "a"\nversion = "0.1.0"\n'
    text += '\n[tool.x]\nversion = "9"\n'
    out = build_agent_wheel.set_version(text, "0.1.0+gabc")
    assert out == text.replace('version = "0.1.0"', 'version = "0.1.0+gabc"')


def test_set_version_of_the_agents_pyproject() -> None:
    text = (COLLECTION_ROOT / "agent" / "pyproject.toml").read_text()
    assert 'version = "0.1.0+g0123"' in build_agent_wheel.set_version(text, "0.1.0+g0123")


def test_a_project_without_a_static_version_is_refused() -> None:
    with pytest.raises(SystemExit, match="no \\[project\\] version"):
        build_agent_wheel.set_version('[project]\nname = "a"\ndynamic = ["version"]\n', "1")


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_agent_wheel.main([]) == 2
    assert "SOURCE_DIR BUILD_DIR VERSION" in capsys.readouterr().err
