"""The controller side of a shared-key rotation: plugin_utils (steps, atomic writes), the
shared_key_rotation action (through ansible, with vault and check mode), the lookup's
`previous` option, and the net_yaml_change and rotation_report filters."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.wg_netmanager.mesh.plugins.plugin_utils import net_yaml, rotation
from ansible_collections.wg_netmanager.mesh.plugins.plugin_utils import shared_key as sk

OLD = base64.b64encode(bytes(range(32))).decode()
NEW = base64.b64encode(bytes(range(32, 64))).decode()


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# --- plugin_utils/shared_key.py -------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "finish", "steps"),
    [
        (None, False, ["keep-previous", "new-key"]),  # start
        (OLD, False, []),  # in progress: no other key
        (NEW, False, ["new-key"]),  # a start cut short: FILE.previous == FILE
        (OLD, True, ["drop-previous"]),
        (NEW, True, ["drop-previous"]),
        (None, True, []),
    ],
)
def test_rotation_steps(previous: str | None, finish: bool, steps: list[str]) -> None:
    assert sk.rotation_steps(NEW, previous, finish) == steps


def test_a_previous_key_equal_to_the_current_one_is_none() -> None:
    assert sk.effective_previous(NEW, OLD) == OLD
    assert sk.effective_previous(NEW, NEW) == ""
    assert sk.effective_previous(NEW, None) == ""


def test_replace_writes_0600_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "mesh.key"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    sk.replace(str(path), b"new\n")
    assert path.read_bytes() == b"new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["mesh.key"]
    assert sk.previous_path(str(path)) == f"{path}.previous"


# --- the action and the lookup, through ansible ---------------------------------------------


def _rotate(run_adhoc: Any, path: Path, state: str, *extra: str) -> dict[str, Any]:
    result, proc = run_adhoc("wg_netmanager.mesh.shared_key_rotation", f"path={path} state={state}", *extra)
    assert OLD not in proc.stdout + proc.stderr and NEW not in proc.stdout + proc.stderr
    return result


def _previous(run_adhoc: Any, path: Path, *extra: str) -> str:
    expr = f"lookup('wg_netmanager.mesh.shared_key', '{path}', previous=true) | hash('sha256')"
    result, _ = run_adhoc("ansible.builtin.debug", f"msg={{{{ {expr} }}}}", *extra)
    assert not result.get("failed"), result
    return result["msg"]


def test_start_and_finish_a_rotation(run_adhoc: Any, tmp_path: Path) -> None:
    path, previous = tmp_path / "mesh.key", tmp_path / "mesh.key.previous"
    path.write_text(OLD + "\n")
    assert _previous(run_adhoc, path) == sha("")

    check = _rotate(run_adhoc, path, "started", "--check", "--diff")
    assert check["changed"] and check["steps"] == ["keep-previous", "new-key"] and check["rotating"]
    assert check["diff"]["before"] == "rotation: none\n"
    assert check["diff"]["after"].startswith("rotation: in progress")
    assert path.read_text() == OLD + "\n" and not previous.exists()

    started = _rotate(run_adhoc, path, "started")
    assert started["changed"] and started["rotating"] and started["previous_path"] == str(previous)
    new = sk.check(path.read_text(), str(path))
    assert new != OLD and previous.read_text() == OLD + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(previous.stat().st_mode) == 0o600
    assert _previous(run_adhoc, path) == sha(OLD)

    again = _rotate(run_adhoc, path, "started")
    assert not again["changed"] and again["steps"] == [] and again["rotating"]
    assert path.read_text() == new + "\n"  # no other key while one rotation is in progress

    check = _rotate(run_adhoc, path, "finished", "--check")
    assert check["changed"] and check["steps"] == ["drop-previous"] and previous.exists()
    finished = _rotate(run_adhoc, path, "finished")
    assert finished["changed"] and not finished["rotating"] and not previous.exists()
    assert path.read_text() == new + "\n"
    assert not _rotate(run_adhoc, path, "finished")["changed"]
    assert sorted(p.name for p in tmp_path.glob("mesh.key*")) == ["mesh.key"]


def test_a_start_cut_short_is_completed_and_renders_no_previous_key(run_adhoc: Any, tmp_path: Path) -> None:
    path, previous = tmp_path / "mesh.key", tmp_path / "mesh.key.previous"
    path.write_text(OLD + "\n")
    previous.write_text(OLD + "\n")  # written, then the controller died before the new key
    assert _previous(run_adhoc, path) == sha("")  # net.yaml: no previousSharedKey (equal keys)
    result = _rotate(run_adhoc, path, "started")
    assert result["steps"] == ["new-key"]
    assert sk.check(path.read_text(), "") != OLD and previous.read_text() == OLD + "\n"


def test_nothing_to_rotate_without_a_key(run_adhoc: Any, tmp_path: Path) -> None:
    result = _rotate(run_adhoc, tmp_path / "absent.key", "started")
    assert result["failed"] and "does not exist" in result["msg"]
    assert list(tmp_path.glob("absent*")) == []


def test_a_bad_previous_file_is_named_not_shown(run_adhoc: Any, tmp_path: Path) -> None:
    path = tmp_path / "mesh.key"
    path.write_text(OLD + "\n")
    (tmp_path / "mesh.key.previous").write_text("c2VjcmV0LWJ1dC10b28tc2hvcnQ=\n")
    result = _rotate(run_adhoc, path, "started")
    assert result["failed"] and f"{path}.previous: key is 20 bytes" in result["msg"]
    assert "c2VjcmV0" not in str(result)


def test_a_vault_encrypted_key_stays_encrypted(
    run_adhoc: Any, ansible_env: dict[str, str], ansible_tool: Any, tmp_path: Path
) -> None:
    path, password = tmp_path / "mesh.key", tmp_path / "vault-pass"
    path.write_text(OLD + "\n")
    password.write_text("correct horse battery staple\n")
    vault_id = ["--vault-id", f"mesh@{password}"]
    encrypt = [ansible_tool("ansible-vault"), "encrypt", *vault_id, str(path)]
    subprocess.run(encrypt, env=ansible_env, check=True, capture_output=True)
    encrypted = path.read_bytes()
    assert encrypted.startswith(b"$ANSIBLE_VAULT;1.2;AES256;mesh\n")

    result = _rotate(run_adhoc, path, "started", *vault_id)
    assert result["changed"], result
    assert (tmp_path / "mesh.key.previous").read_bytes() == encrypted  # byte for byte
    assert path.read_bytes().startswith(b"$ANSIBLE_VAULT;1.2;AES256;mesh\n")
    view = [ansible_tool("ansible-vault"), "view", *vault_id, str(path)]
    new = subprocess.run(view, env=ansible_env, check=True, capture_output=True, text=True).stdout
    assert sk.check(new, str(path)) != OLD
    assert _previous(run_adhoc, path, *vault_id) == sha(OLD)

    without = _rotate(run_adhoc, path, "finished")
    assert without["failed"] and "cannot read it" in without["msg"]


# --- filters ----------------------------------------------------------------------------------

NET = """\
# Ansible managed
network:
  sharedKey: "{shared}"
{previous}  subnet: "10.1.1.0/24"
peers:
  beta: {{endPoint: "198.51.100.2:50000", adminPort: 50001, wgIp: 10.1.1.2}}
"""


def net(shared: str = OLD, previous: str | None = None) -> str:
    return NET.format(shared=shared, previous=f'  previousSharedKey: "{previous}"\n' if previous else "")


@pytest.mark.parametrize(
    ("old", "new", "change"),
    [
        (net(), net(), "none"),
        (net(), net().replace("# Ansible managed", "# another header"), "none"),
        (net(), net(NEW, OLD), "reload"),  # phase 1
        (net(NEW, OLD), net(NEW), "reload"),  # phase 2
        (net(), net(NEW, OLD).replace("10.1.1.0/24", "10.1.0.0/16"), "restart"),
        (net(), net().replace("50001", "50003"), "restart"),  # a static node moved
        (None, net(), "restart"),  # no file yet
        ("", net(), "restart"),
        ("network: [unclosed", net(), "restart"),
    ],
)
def test_net_yaml_change(old: str | None, new: str, change: str) -> None:
    assert net_yaml.change(old, new) == change


def test_net_yaml_change_ca_fields_reload() -> None:
    old = net().replace("  subnet:", '  caPublicKey: "a"\n  revokedCerts: []\n  subnet:')
    revoked = old.replace("revokedCerts: []", 'revokedCerts: ["00000000000000ab"]')
    assert net_yaml.change(old, revoked) == "reload"


LEAVES = 'leaves:\n  phone: {publicKey: "%s", wgIp: 10.1.1.50, home: beta}\n'


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (net(), net() + LEAVES % "a"),  # a leaf added
        (net() + LEAVES % "a", net() + LEAVES % "b"),  # its key changed
        (net() + LEAVES % "a", net()),  # removed
        (net(), net().replace("  subnet:", '  routedSubnets: ["192.168.0.0/16"]\n  subnet:')),
    ],
)
def test_net_yaml_change_of_leaves_and_routed_subnets_reload(old: str, new: str) -> None:
    assert net_yaml.change(old, new) == "reload"
    assert net_yaml.change(old, new.replace("10.1.1.0/24", "10.1.0.0/16")) == "restart"


GAMMA = '  gamma: {endPoint: "198.51.100.5:50000", adminPort: 50001, wgIp: 10.1.1.5}\n'
ORIGINAL = """\
network: {sharedKey: "k", subnet: "10.1.1.0/24"}
peers:
  - {endPoint: "198.51.100.2:50000", adminPort: 50001, wgIp: 10.1.1.2}
"""
ORIGINAL_GAMMA = '  - {endPoint: "198.51.100.5:50000", adminPort: 50001, wgIp: 10.1.1.5}\n'


@pytest.mark.parametrize(
    ("old", "new", "node", "change"),
    [
        (net(), net() + GAMMA, ("alice", "10.1.1.1"), "reload"),  # a static node added
        (net() + GAMMA, net(), ("alice", "10.1.1.1"), "reload"),  # and removed
        (net(), net().replace("198.51.100.2", "198.51.100.9"), ("alice", "10.1.1.1"), "reload"),
        (net(), net() + GAMMA, ("beta", "10.1.1.2"), "reload"),  # beta stays as it was
        (net(), net().replace("198.51.100.2", "198.51.100.9"), ("beta", "10.1.1.2"), "restart"),
        (net(), net() + GAMMA, ("gamma", "10.1.1.5"), "restart"),  # becomes a static node
        (net() + GAMMA, net(), ("gamma", "10.1.1.5"), "restart"),  # is no longer one
        (net(), net() + GAMMA, None, "restart"),  # the node unknown: as before
        (ORIGINAL, ORIGINAL + ORIGINAL_GAMMA, ("alice", "10.1.1.1"), "reload"),  # list form
        (ORIGINAL, ORIGINAL + ORIGINAL_GAMMA, ("static-10-1-1-5", "10.1.1.5"), "restart"),
        (net(), net(NEW, OLD) + GAMMA, ("alice", "10.1.1.1"), "reload"),  # both at once
        (net(), net(NEW).replace("10.1.1.0/24", "10.1.0.0/16") + GAMMA, ("alice", "10.1.1.1"), "restart"),
    ],
)
def test_net_yaml_change_of_the_static_nodes(
    old: str, new: str, node: tuple[str, str] | None, change: str
) -> None:
    assert net_yaml.change(old, new, *(node or ())) == change


KEY_FILES = """\
network:
  sharedKeyFile: "shared.key"
{previous}  subnet: "10.1.1.0/24"
peers:
  beta: {{endPoint: "198.51.100.2:50000", adminPort: 50001, wgIp: 10.1.1.2}}
"""


def key_files(rotating: bool = False) -> str:
    return KEY_FILES.format(previous='  previousSharedKeyFile: "shared.key.previous"\n' if rotating else "")


@pytest.mark.parametrize(
    ("old", "new", "change"),
    [
        (net(), key_files(), "reload"),  # the key moves out of net.yaml
        (net(NEW, OLD), key_files(True), "reload"),
        (key_files(), key_files(True), "reload"),  # phase 1
        (key_files(True), key_files(), "reload"),  # phase 2
        (key_files(), key_files(), "none"),  # only the key file changed: its task reloads
        (key_files(), key_files().replace("50001", "50003"), "restart"),
    ],
)
def test_net_yaml_change_with_key_files(old: str, new: str, change: str) -> None:
    assert net_yaml.change(old, new) == change


@pytest.mark.parametrize(
    ("text", "inline"),
    [
        (net(), True),
        (net(NEW, OLD), True),
        (key_files(), False),
        (key_files(True), False),
        ("", False),
        ("network: [unclosed", True),  # might hold a key: show it to nobody
        ("just text", True),
    ],
)
def test_net_yaml_inline_keys(text: str, inline: bool) -> None:
    assert net_yaml.inline_keys(text) is inline


def test_rotation_report_names_every_blocker() -> None:
    report = rotation.rotation_report(
        {
            "beta": {"rotating": True, "onPreviousKey": ["charlie", "alpha"]},
            "alpha": {"rotating": True, "onPreviousKey": []},
            "charlie": {"rotating": False, "onPreviousKey": []},
            "delta": None,
            "echo": {"running": False, "converged": False, "peers": []},
            "fox": {"rotating": True},
        }
    )
    assert report["lines"] == [
        "alpha: rotating; hears nobody on the previous key",
        "beta: rotating; hears alpha, charlie on the previous key",
        "charlie: one key (not rotating)",
        f"delta: {rotation.NOT_REACHED}",
        "echo: agent not running",
        "fox: rotating; status has no onPreviousKey",
    ]
    assert report["blockers"] == [
        "beta: hears alpha, charlie on the previous key",
        "charlie: not rotating (its agent has one key: phase 1 has not reached it)",
        f"delta: {rotation.NOT_REACHED}",
        "echo: agent not running",
        "fox: status has no onPreviousKey (agent too old?)",
    ]
    assert rotation.rotation_report({"alpha": {"rotating": True, "onPreviousKey": []}})["blockers"] == []
    with pytest.raises(rotation.RotationError):
        rotation.rotation_report(["alpha"])


def test_rotation_report_lets_peers_outside_the_mesh_be_cut_off() -> None:
    """Shutting out a node taken out of the inventory is what a rotation is for: it still
    speaks the old key, and phase 2 must not wait for it."""
    members = ["alpha", "beta", "KEYofCHARLIE="]
    report = rotation.rotation_report(
        {
            "alpha": {"rotating": True, "onPreviousKey": ["mallory"]},
            "beta": {"rotating": True, "onPreviousKey": ["KEYofCHARLIE=", "mallory"]},
        },
        members,
    )
    cut = " (and, outside wg_mesh, cut off by phase 2: mallory)"
    assert report["lines"] == [
        "alpha: rotating; hears nobody on the previous key" + cut,
        "beta: rotating; hears KEYofCHARLIE= on the previous key" + cut,
    ]
    assert report["blockers"] == ["beta: hears KEYofCHARLIE= on the previous key"]


def test_the_key_id_is_the_agents() -> None:
    """The controller names its key as the agents' status does (frame.key_id), and the name
    tells nothing of the key (a keyed hash, 48 bits)."""
    from wg_netmanager.core.frame import key_id
    from wg_netmanager.core.wire import Codec, Identity

    raw = bytes(range(32))
    shared = base64.b64encode(raw).decode()
    assert rotation.key_id(shared) == key_id(raw) == Codec(raw, Identity(bytes(32)), 5).key_ids()[0]
    assert len(rotation.key_id(shared)) == 12 and rotation.key_id(shared) not in (shared, raw.hex())
    for bad in ("not base64!", base64.b64encode(bytes(16)).decode()):
        with pytest.raises(rotation.RotationError) as err:
            rotation.key_id(bad)
        assert bad not in str(err.value)  # never the key (or what was given as one)


def test_phase_2_waits_for_a_node_that_runs_another_key() -> None:
    """Rotating with an old pair of keys (its net.yaml from before phase 1, say) is not
    enough: its agent must speak the controller's new key."""
    new = rotation.key_id(base64.b64encode(bytes(range(32))).decode())
    report = rotation.rotation_report(
        {
            "alpha": {"rotating": True, "onPreviousKey": [], "sharedKeyId": new},
            "beta": {"rotating": True, "onPreviousKey": [], "sharedKeyId": "0123456789ab"},
            "old": {"rotating": True, "onPreviousKey": []},  # an agent from before key ids
        },
        None,
        new,
    )
    assert report["blockers"] == [
        f"beta: runs another shared key (id 0123456789ab; the controller's new key is {new})"
    ]
