"""plugin_utils/shared_key.py and the shared_key lookup (through ansible, with vault)."""

from __future__ import annotations

import base64
import hashlib
import multiprocessing
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.wg_netmanager.mesh.plugins.plugin_utils import shared_key as sk

GOOD_KEY = base64.b64encode(bytes(range(32))).decode()


def test_generate_is_base64_of_32_random_bytes() -> None:
    keys = {sk.generate() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 32


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not base64!!", "content is not base64"),
        (base64.b64encode(b"short").decode(), "key is 5 bytes, expected 32"),
        ("é" * 44, "content is not base64"),
        ("", "key is 0 bytes"),
    ],
)
def test_check_rejects_bad_content_naming_the_file(content: str, match: str) -> None:
    with pytest.raises(sk.SharedKeyError, match=match) as info:
        sk.check(content, "/x/shared_key")
    assert str(info.value).startswith("shared key file /x/shared_key: ")
    if content:
        assert content not in str(info.value)


def test_check_strips_whitespace() -> None:
    assert sk.check(f"  {GOOD_KEY}\n", "f") == GOOD_KEY


def test_create_sets_modes_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "shared_key"
    assert sk.create(str(path), GOOD_KEY) is True
    assert path.read_text() == GOOD_KEY + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sk.create(str(path), sk.generate()) is False
    assert path.read_text() == GOOD_KEY + "\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["shared_key"]


def _race(path: str) -> str:
    sk.create(path, sk.generate())
    return Path(path).read_text()


def test_concurrent_creators_agree(tmp_path: Path) -> None:
    """Forks looking the key up at once (one per host) must all see one complete key."""
    path = str(tmp_path / "shared_key")
    with multiprocessing.get_context("fork").Pool(8) as pool:
        seen = set(pool.map(_race, [path] * 32))
    assert len(seen) == 1
    assert sk.check(seen.pop(), path)


def _lookup(run_adhoc: Any, path: Path, *extra: str, options: str = "") -> Any:
    """Look the key up on localhost; print only its hash, as a playbook never should."""
    expr = f"lookup('wg_netmanager.mesh.shared_key', '{path}'{options}) | hash('sha256')"
    result, _ = run_adhoc("ansible.builtin.debug", f"msg={{{{ {expr} }}}}", *extra)
    return result


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_lookup_creates_then_reads(run_adhoc: Any, tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "shared_key"
    check = _lookup(run_adhoc, path, "--check")  # a check run writes nothing
    assert (check.get("failed"), check.get("msg")) == (None, sha("")), check
    assert not path.parent.exists()
    first = _lookup(run_adhoc, path)
    assert not first.get("failed"), first
    key = path.read_text().strip()
    assert first["msg"] == sha(key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert _lookup(run_adhoc, path)["msg"] == sha(key)


def test_lookup_create_false(run_adhoc: Any, tmp_path: Path) -> None:
    path = tmp_path / "absent"
    result = _lookup(run_adhoc, path, options=", create=false")
    assert result["failed"] is True
    assert f"shared key file {path} does not exist" in result["msg"]
    assert not path.exists()


def test_lookup_bad_file_names_it_without_content(run_adhoc: Any, tmp_path: Path) -> None:
    path = tmp_path / "shared_key"
    path.write_text("c2VjcmV0LWJ1dC10b28tc2hvcnQ=\n")
    result = _lookup(run_adhoc, path)
    assert result["failed"] is True
    assert f"shared key file {path}: key is 20 bytes, expected 32" in result["msg"]
    assert "c2VjcmV0" not in str(result)


def test_lookup_reads_vault_encrypted_file(
    run_adhoc: Any, ansible_env: dict[str, str], ansible_tool: Any, tmp_path: Path
) -> None:
    path = tmp_path / "shared_key"
    path.write_text(GOOD_KEY + "\n")
    os.chmod(path, 0o600)
    password = tmp_path / "vault-pass"
    password.write_text("correct horse battery staple\n")
    subprocess.run(
        [ansible_tool("ansible-vault"), "encrypt", "--vault-password-file", str(password), str(path)],
        env=ansible_env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert path.read_text().startswith("$ANSIBLE_VAULT;")
    result = _lookup(run_adhoc, path, "--vault-password-file", str(password))
    assert result["msg"] == sha(GOOD_KEY), result

    without = _lookup(run_adhoc, path)
    assert without["failed"] is True
    assert f"shared key file {path}: cannot read it" in without["msg"]
