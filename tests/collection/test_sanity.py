"""`ansible-test sanity` on the collection's plugins, and `ansible-galaxy collection build`.

ansible-test needs the collection at `.../ansible_collections/wg_netmanager/mesh/` inside a
version-controlled tree, and checks every file in it. The repository also holds the agent, the
lab and tests that are not Ansible content, so the test copies only the collection's own
metadata and plugins into a temporary tree and makes it a git repository.

ansible-test installs each sanity test's pinned requirements (pylint, yamllint, voluptuous...)
from PyPI into virtual environments it caches under `~/.ansible/test/venv`. It bootstraps pip
in them with a script from ci-files.testing.ansible.com, which is not reachable from every
network. So ansible-test runs with its own HOME (a cache directory kept between runs, not the
user's ~/.ansible) where that script is replaced by one that uses the interpreter's bundled
`ensurepip` and then installs the same pinned pip from PyPI. The first run creates the
environments (about 5 minutes on an idle machine, 14 under heavy load); later runs take
about one minute.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from collection_paths import COLLECTION_ROOT as ROOT
from collection_paths import VENV_BIN
from collection_paths import ansible_bin as tool

COLLECTION_CONTENT = ("galaxy.yml", "meta", "plugins", "changelogs", "tests/sanity", "README.md")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wg_netmanager"

GET_PIP_SHIM = '''\
"""Stand-in for ansible-test's pip bootstrap script, written by wg_netmanager's
tests/collection/test_sanity.py: bootstrap pip from the interpreter's ensurepip (in a child
process: ensurepip points PIP_CONFIG_FILE at /dev/null in its own process), then install the
pinned versions ansible-test asks for with the normal pip configuration."""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip"])
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *sys.argv[1:]]))
'''


def ansible_test_home() -> Path:
    """A HOME for ansible-test with the pip bootstrap shim and the user's pip config."""
    home = CACHE / "ansible-test-home"
    try:
        import ansible_test  # the venv's, installed with ansible-core
    except ImportError:
        pytest.skip("ansible-test is not importable from this Python (run scripts/setup)")

    source = Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    match = re.search(r"pip='([0-9.]+)'", source.read_text())
    if match:
        shim = home / ".ansible/test/cache" / f"get_pip_{match[1].replace('.', '_')}.py"
        shim.parent.mkdir(parents=True, exist_ok=True)
        if not shim.exists() or shim.read_text() != GET_PIP_SHIM:
            shim.write_text(GET_PIP_SHIM)
    # ansible-test passes only HOME and PATH through, so the user's pip settings (mirrors,
    # certificates) must be found under the new HOME.
    for conf in (".config/pip/pip.conf", ".pip/pip.conf"):
        user_conf = Path.home() / conf
        if user_conf.is_file():
            (home / conf).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(user_conf, home / conf)
    return home


@pytest.fixture
def collection_tree(tmp_path: Path) -> Path:
    """A copy of the collection's content at ansible_collections/wg_netmanager/mesh, in git."""
    dest = tmp_path / "ansible_collections" / "wg_netmanager" / "mesh"
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COLLECTION_CONTENT:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / name)
    if not (dest / "README.md").exists():
        (dest / "README.md").write_text("# wg_netmanager.mesh\n")
    git = ["git", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "."], cwd=dest, check=True)
    return dest


@pytest.mark.collection
@pytest.mark.timeout(1800)  # a cold cache builds ~10 venvs: 5 min idle, 14 min at load 100
def test_ansible_test_sanity(collection_tree: Path) -> None:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    env = dict(os.environ)
    env["HOME"] = str(ansible_test_home())
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # --python X finds ours
    argv = [tool("ansible-test"), "sanity", "--python", python, "--local", "--color", "no"]
    started = time.monotonic()
    proc = subprocess.run(
        argv,
        cwd=collection_tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=1700,
        check=False,
    )
    elapsed = time.monotonic() - started
    print(f"ansible-test sanity took {elapsed:.0f} s")
    assert proc.returncode == 0, (
        f"{' '.join(argv)} failed ({proc.returncode}) after {elapsed:.0f} s:\n{proc.stdout}\n{proc.stderr}"
    )


@pytest.mark.collection
def test_collection_builds(tmp_path: Path) -> None:
    """galaxy.yml is valid and build_ignore keeps tests, the lab and local state out."""
    proc = subprocess.run(
        [tool("ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with tarfile.open(tmp_path / "wg_netmanager-mesh-0.1.0.tar.gz") as tar:
        names = set(tar.getnames())
    for wanted in (
        "MANIFEST.json",
        "meta/runtime.yml",
        "plugins/modules/mesh_validate.py",
        "plugins/modules/mesh_info.py",
        "plugins/modules/node_cert.py",
        "plugins/modules/ca_revocations.py",
        "plugins/lookup/shared_key.py",
        "plugins/filter/mesh.py",
        "agent/pyproject.toml",  # the agent role installs the agent from the collection
    ):
        assert wanted in names
    for unwanted in (".venv", ".lab", ".git", ".ansible", "tests/lab", "tests/collection"):
        assert not any(n == unwanted or n.startswith(unwanted + "/") for n in names), unwanted
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


OLD_PYTHON_CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import mesh_status, mesh_validate, node_cert
result = mesh_validate.validate_mesh(
    "10.1.1.0/24", [{"host": "a", "wg_ip": "10.1.1.1", "static_endpoint": "gw.example.org:5"}]
)
if result["problems"] or result["static_peers"]["a"]["adminPort"] != 6:
    raise SystemExit(repr(result))
if not mesh_status.summarize({"peers": [{"name": "b", "path": "lan"}]})["converged"]:
    raise SystemExit("summarize")
want = node_cert.desired_cert("a", "10.1.1.1", None, ["10.9.0.0/16"])
if node_cert.renewal_reasons(None, want, [], 0, 30) != ["no certificate yet"]:
    raise SystemExit("renewal_reasons")
if node_cert.serials_in_force([{"serial": "ab"}]) != ["00000000000000ab"]:
    raise SystemExit("serials_in_force")
"""


def _interpreter(version: str) -> str | None:
    """`pythonX.Y` if one really runs (pyenv shims exist for versions that are not enabled)."""
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{version}.*/bin/python"))
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.mark.parametrize("version", ["3.7", "3.8", "3.9", "3.10", "3.12"])
def test_module_utils_run_on_target_pythons(version: str) -> None:
    """Modules run on the managed host's Python (ansible-core 2.17: 3.7 and later).

    The sanity run above checks only the venv's Python; this runs the module_utils logic on
    every other target version found on this machine.
    """
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} here")
    proc = subprocess.run(
        [python, "-c", OLD_PYTHON_CHECK, str(ROOT / "plugins" / "module_utils")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
