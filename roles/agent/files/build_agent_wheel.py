"""Build the agent's wheel on the controller; run by roles/agent/tasks/install.yml.

    build_agent_wheel.py SOURCE_DIR BUILD_DIR VERSION

Copies SOURCE_DIR (the agent's project, without build byproducts) to a scratch directory in
BUILD_DIR, sets the project's version to VERSION and builds the wheel into BUILD_DIR/dist.
VERSION is the release with a local label naming the sources' checksum (0.1.0+g1a2b3c...), so
pip on the node sees every rebuild as another version: it replaces the agent when the sources
changed and leaves it alone when they did not, with no marker file of our own.

BUILD_DIR/dist appears only when the wheel is complete (the role's task skips on it), and the
sources are only read: the collection may be installed read-only (execution environments).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_VERSION = re.compile(r'^(version\s*=\s*)"[^"]*"', re.MULTILINE)


def set_version(pyproject: str, version: str) -> str:
    """pyproject.toml's text with [project] version = VERSION."""
    head, sep, rest = pyproject.partition("[project]")
    end = re.search(r"^\[", rest, re.MULTILINE)
    section, tail = (rest[: end.start()], rest[end.start() :]) if end else (rest, "")
    section, count = _VERSION.subn(lambda m: f'{m.group(1)}"{version}"', section, count=1)
    if not sep or count != 1:
        raise SystemExit('build_agent_wheel: pyproject.toml has no [project] version = "..." line')
    return head + sep + section + tail


def build(source: Path, build_dir: Path, version: str) -> Path:
    build_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=build_dir) as scratch:
        src = Path(scratch) / "src"
        shutil.copytree(
            source,
            src,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".*"),
        )
        pyproject = src / "pyproject.toml"
        pyproject.write_text(set_version(pyproject.read_text(), version))
        dist = Path(scratch) / "dist"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-input", "--no-deps",
             "--wheel-dir", str(dist), str(src)],
            check=True,
            stdout=sys.stderr,
        )  # fmt: skip
        wheels = sorted(dist.glob("*.whl"))
        if len(wheels) != 1:
            raise SystemExit(f"build_agent_wheel: expected one wheel, pip made {[w.name for w in wheels]}")
        final = build_dir / "dist"
        shutil.rmtree(final, ignore_errors=True)
        dist.rename(final)
        return final / wheels[0].name


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    print(build(Path(argv[0]), Path(argv[1]), argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
