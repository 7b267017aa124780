"""One agent per interface (issue 15, fault 1): the lock a second agent finds taken."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wg_netmanager.core.checks import ConfigError
from wg_netmanager.io.lock import AlreadyRunning, InstanceLock


def test_a_second_lock_for_the_interface_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path / "state", "wg0")
    first.acquire()
    try:
        assert oct((tmp_path / "state" / "wg0.lock").stat().st_mode & 0o777) == "0o600"
        with pytest.raises(AlreadyRunning) as err:
            InstanceLock(tmp_path / "state", "wg0").acquire()
        assert str(err.value) == (
            f"wg0: another agent is already running for this interface "
            f"(pid {os.getpid()}, lock {tmp_path / 'state' / 'wg0.lock'})"
        )
        other = InstanceLock(tmp_path / "state", "wg1")  # another interface: its own lock
        other.acquire()
        other.release()
    finally:
        first.release()
    again = InstanceLock(tmp_path / "state", "wg0")  # released: free again, file kept
    again.acquire()
    again.release()


def test_a_symlink_in_place_of_the_lock_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep")
    (tmp_path / "wg0.lock").symlink_to(target)
    with pytest.raises(ConfigError) as err:
        InstanceLock(tmp_path, "wg0").acquire()
    assert str(err.value).startswith(f"{tmp_path / 'wg0.lock'}: (file): cannot write: ")
    assert target.read_text() == "keep"


def test_a_state_directory_that_takes_no_lock_names_the_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_text("a file where the state directory should be")
    with pytest.raises(ConfigError) as err:
        InstanceLock(state, "wg0").acquire()
    assert str(err.value).startswith(f"{state / 'wg0.lock'}: (file): cannot write: ")
