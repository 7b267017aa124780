"""A node's own certificate on the command line and in peer.yaml (`cert`, `--cert`): checked
before the agent starts, each mistake one line and exit status 2."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from wg_netmanager.cli import main

NODE_KEY = base64.b64encode(bytes(range(100, 132))).decode()
SHARED = base64.b64encode(bytes(32)).decode()


@pytest.fixture
def mesh(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A CA, a net.yaml naming it, and a peer.yaml for alice in tmp_path."""
    assert main(["ca", "init", str(tmp_path / "ca")]) == 0
    ca_pub = (tmp_path / "ca" / "ca.pub").read_text().strip()
    net = {
        "network": {"sharedKey": SHARED, "subnet": "10.1.1.0/24", "caPublicKey": ca_pub},
        "peers": {"beta": {"endPoint": "198.51.100.2:50000", "adminPort": 50001, "wgIp": "10.1.1.2"}},
    }
    (tmp_path / "net.yaml").write_text(yaml.safe_dump(net))
    (tmp_path / "net.yaml").chmod(0o600)
    (tmp_path / "peer.yaml").write_text(yaml.safe_dump({"name": "alice", "wgIp": "10.1.1.5"}))
    capsys.readouterr()
    return tmp_path


def sign(d: Path, name: str = "alice", ip: str = "10.1.1.5", *extra: str) -> Path:
    out = d / f"{name}-{ip}.crt"
    args = ["cert", "sign", "--ca-key", str(d / "ca" / "ca.key"), "--name", name, "--wg-ip", ip]
    assert main([*args, "--public-key", NODE_KEY, "-o", str(out), *extra]) == 0
    return out


def check(d: Path, *extra: str) -> int:
    return main(["check-config", "-c", str(d / "net.yaml"), "-p", str(d / "peer.yaml"), *extra])


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def test_a_network_ca_wants_a_certificate(mesh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(mesh) == 2
    assert one_line(capsys) == (
        f"{mesh / 'net.yaml'}: network.caPublicKey: names a network CA: "
        "node alice needs a certificate (peer.yaml cert, --cert)"
    )


def test_a_good_certificate_from_peer_yaml_is_found_beside_it(
    mesh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crt = sign(mesh)
    (mesh / "peer.yaml").write_text(yaml.safe_dump({"name": "alice", "wgIp": "10.1.1.5", "cert": crt.name}))
    capsys.readouterr()
    assert check(mesh) == 0
    out = capsys.readouterr().out
    assert "  mode: network CA " in out and "  certificate: serial " in out and "valid until" in out


@pytest.mark.parametrize(
    ("who", "extra", "reason"),
    [
        (("bob", "10.1.1.5"), (), "certificate is for 'bob', this node is 'alice'"),
        (("alice", "10.1.1.9"), (), "certificate gives address 10.1.1.9, this node is 10.1.1.5"),
    ],
)
def test_a_certificate_for_another_node_is_refused(
    mesh: Path, capsys: pytest.CaptureFixture[str], who: tuple[str, str], extra: tuple[str, ...], reason: str
) -> None:
    crt = sign(mesh, *who, *extra)
    capsys.readouterr()
    assert check(mesh, "--cert", str(crt)) == 2
    assert one_line(capsys) == f"{crt}: certificate: {reason}"


def test_a_certificate_of_another_ca_or_revoked_is_refused(
    mesh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ca", "init", str(mesh / "rogue")]) == 0
    out = mesh / "rogue.crt"
    args = ["cert", "sign", "--ca-key", str(mesh / "rogue" / "ca.key"), "--name", "alice"]
    assert main([*args, "--wg-ip", "10.1.1.5", "--public-key", NODE_KEY, "-o", str(out)]) == 0
    capsys.readouterr()
    assert check(mesh, "--cert", str(out)) == 2
    assert "certificate: other issuer" in one_line(capsys)

    crt = sign(mesh)
    capsys.readouterr()
    assert main(["cert", "show", "--json", str(crt)]) == 0
    doc = json.loads(capsys.readouterr().out)
    net = yaml.safe_load((mesh / "net.yaml").read_text())
    net["network"]["revokedCerts"] = [doc["serial"]]
    (mesh / "net.yaml").write_text(yaml.safe_dump(net))
    assert check(mesh, "--cert", str(crt)) == 2
    assert one_line(capsys) == f"{crt}: certificate: revoked: serial {doc['serial']}"


def test_a_missing_certificate_file_is_one_line(mesh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(mesh, "--cert", str(mesh / "nope.crt")) == 2
    assert one_line(capsys) == f"{mesh / 'nope.crt'}: (file): cannot read: No such file or directory"


def test_announced_subnets_must_be_in_the_certificate(mesh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    crt = sign(mesh, "alice", "10.1.1.5", "--subnet", "192.168.0.0/16")
    capsys.readouterr()
    assert check(mesh, "--cert", str(crt), "--subnet", "192.168.50.0/24") == 0
    capsys.readouterr()
    assert check(mesh, "--cert", str(crt), "--subnet", "172.16.0.0/12") == 2
    assert one_line(capsys) == (
        f"command line: --subnet: 172.16.0.0/12 is not in this node's certificate {crt}"
        " (it lists 192.168.0.0/16)"
    )
    peer = {"name": "alice", "wgIp": "10.1.1.5", "cert": str(crt), "subnets": ["10.9.0.0/16"]}
    (mesh / "peer.yaml").write_text(yaml.safe_dump(peer))
    assert check(mesh) == 2
    assert one_line(capsys).startswith(f"{mesh / 'peer.yaml'}: subnets: 10.9.0.0/16 is not in this node's")
