"""The private key file: created once, 0600 in a 0700 directory, same key after a restart."""

from __future__ import annotations

import base64
import errno
import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from wg_netmanager.backends.keys import public_key
from wg_netmanager.core.config import ConfigError
from wg_netmanager.keystore import PrivateKey, key_path, load_or_create_private_key


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_creates_key_with_private_modes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    key = load_or_create_private_key(state, "wg0")
    path = state / "wg0" / "private.key"
    assert path == key_path(state, "wg0")
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600
    assert path.read_text().strip() == key.private_b64()
    assert len(base64.b64decode(key.private_b64())) == 32
    assert key.public_b64 == public_key(key.private_b64())
    assert [p.name for p in path.parent.iterdir()] == ["private.key"]  # no temp file left


def test_restart_returns_same_key(tmp_path: Path) -> None:
    first = load_or_create_private_key(tmp_path, "wg0")
    second = load_or_create_private_key(tmp_path, "wg0")
    assert second == first
    assert second.public_b64 == first.public_b64
    assert load_or_create_private_key(tmp_path, "wg1") != first


def test_never_world_readable_even_with_open_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_or_create_private_key(tmp_path, "wg0")
    finally:
        os.umask(old)
    assert mode(tmp_path / "wg0") == 0o700
    assert mode(tmp_path / "wg0" / "private.key") == 0o600


def test_loose_modes_are_fixed_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = load_or_create_private_key(tmp_path, "wg0")
    (tmp_path / "wg0").chmod(0o755)
    (tmp_path / "wg0" / "private.key").chmod(0o644)
    with caplog.at_level(logging.WARNING):
        again = load_or_create_private_key(tmp_path, "wg0")
    assert again == key
    assert mode(tmp_path / "wg0") == 0o700
    assert mode(tmp_path / "wg0" / "private.key") == 0o600
    assert "setting 0600" in caplog.text and "setting 0700" in caplog.text
    assert key.private_b64() not in caplog.text


def test_corrupt_key_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "wg0" / "private.key"
    path.parent.mkdir(mode=0o700)
    path.write_text("garbage\n")
    with pytest.raises(ConfigError) as info:
        load_or_create_private_key(tmp_path, "wg0")
    assert info.value.file == str(path)
    assert "not a WireGuard private key" in info.value.reason


def test_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "wg0").mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    target.write_text("x")
    (tmp_path / "wg0" / "private.key").symlink_to(target)
    with pytest.raises(ConfigError):
        load_or_create_private_key(tmp_path, "wg0")


def test_repr_and_str_are_redacted() -> None:
    key = PrivateKey.generate()
    for text in (repr(key), str(key), f"{key}", repr([key])):
        assert key.private_b64() not in text
        assert key.public_b64 in text
        assert "redacted" in text


def test_bad_interface_name_cannot_escape(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        key_path(tmp_path, "../etc")


def test_concurrent_creation_agrees(tmp_path: Path) -> None:
    results: list[PrivateKey] = []

    def worker() -> None:
        results.append(load_or_create_private_key(tmp_path, "wg0"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(results) == 8
    assert len({k.private_b64() for k in results}) == 1


def test_a_full_disk_is_one_config_error_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)  # where a full disk shows at the latest
    with pytest.raises(ConfigError) as info:
        load_or_create_private_key(tmp_path, "wg0")
    assert info.value.file == str(tmp_path / "wg0" / "private.key")
    assert info.value.reason == "cannot write: No space left on device"
    assert list((tmp_path / "wg0").iterdir()) == [], "no key, no temporary file"
