"""A mesh with a network CA, for real: alpha, beta and charlie run with certificates; an
attacker on delta's host (on charlie's LAN) holds the shared key and runs the agent with no
certificate, a self-signed one, another node's, an expired or a revoked one, or one for
another address. No honest node accepts it: no WireGuard peer with its key, no table entry,
no status entry. The same attacker with a valid certificate is accepted (the control case).

Where the agent itself would refuse its certificate at start (another node's, expired, other
address), the attacker runs a modified agent that skips that check: what a stolen box with
altered code would do.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import time
from ipaddress import IPv4Address
from typing import Any, Optional

import pytest
from meshlab import PYTHON, Mesh, wait_for

from wg_netmanager import certfiles
from wg_netmanager.core.cert import CaKey, format_serial, sign

pytestmark = pytest.mark.lab

HONEST = ["alpha", "beta", "charlie"]
CA = CaKey(secrets.token_bytes(32))
ROGUE = CaKey(secrets.token_bytes(32))
REVOKED = secrets.randbits(63) + 1
CERT_FILE = "/etc/wg_netmanager/node.crt"
# The agent, with its start-up check of its own certificate taken out.
UNCHECKED = (
    "import sys; import wg_netmanager.io.certwatch as w, wg_netmanager.certfiles as c;"
    " w.own_cert = lambda s, n, k, t: c.read_cert(s.cert);"
    " from wg_netmanager.cli import main; sys.exit(main(sys.argv[1:]))"
)


def public_key(mesh: Mesh, host: str, interface: str = "wg0") -> str:
    """The node's WireGuard key, made now if it has none (what a controller asks first)."""
    out = mesh.lab.host(host).run([PYTHON, "-m", "wg_netmanager", "pubkey", "-i", interface])
    return out.stdout.strip()


def write_cert(
    mesh: Mesh,
    host: str,
    name: str,
    wg_ip: str,
    key: str,
    ca: CaKey = CA,
    serial: int = 0,
    validity: tuple[int, int] = (-3600, 86400),
) -> None:
    now = int(time.time())
    cert = sign(
        ca,
        serial=serial or secrets.randbits(63) + 1,
        name=name,
        wg_ip=IPv4Address(wg_ip),
        public_key=key,
        not_before=now + validity[0],
        not_after=now + validity[1],
    )
    path = mesh.lab.host(host).path(CERT_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    certfiles.write_cert(path, cert)


class CaMesh(Mesh):
    def net_yaml(self) -> dict[str, Any]:
        net = super().net_yaml()
        net["network"] |= {"caPublicKey": CA.public_b64, "revokedCerts": [format_serial(REVOKED)]}
        return net

    def start(self, host: str, wg_ip: Optional[str] = None, net: Optional[dict[str, Any]] = None) -> None:
        if host in HONEST and host not in self.started:
            write_cert(self, host, host, self.wg_ip(host), public_key(self, host))
        super().start(host, wg_ip, net)

    def command(self, host: str, wg_ip: str) -> list[str]:
        return [*super().command(host, wg_ip), "--cert", CERT_FILE]


def knowers(mesh: Mesh, key: str) -> list[str]:
    """The honest hosts whose WireGuard or status has `key`."""
    found = []
    for h in HONEST:
        wg = mesh.lab.host(h).run(["wg", "show", "wg0", "dump"], check=False).stdout
        st = mesh.status(h) or {}
        if key in wg or any(p.get("publicKey") == key for p in st.get("peers", [])):
            found.append(h)
    return found


def rejected(mesh: Mesh) -> int:
    st = mesh.status("beta")
    return st["drops"]["rejected"] if st else 0


# case -> (certificate: (name, wgIp, CA, serial, validity) or None, mallory's CA, modified agent)
CASES: dict[str, tuple[Optional[tuple[Any, ...]], Optional[CaKey], bool]] = {
    "no certificate": (None, None, False),
    "self-signed": (("mallory", "10.1.1.9", ROGUE, 0, (-3600, 86400)), ROGUE, False),
    "another node's": (("charlie", "10.1.1.3", CA, 0, (-3600, 86400)), CA, True),
    "expired": (("mallory", "10.1.1.9", CA, 0, (-7200, -3600)), CA, True),
    "revoked": (("mallory", "10.1.1.9", CA, REVOKED, (-3600, 86400)), CA, False),
    "another address": (("mallory", "10.1.1.19", CA, 0, (-3600, 86400)), CA, True),
}


def run_mallory(mesh: Mesh, case: str, key: str) -> subprocess.Popen[str]:
    spec, mallory_ca, modified = CASES[case]
    net = mesh.net_yaml()
    net["network"].pop("revokedCerts")  # its own copy, from before the revocation
    if mallory_ca is None:
        net["network"].pop("caPublicKey")  # shared-key mode: it sends no certificate
    else:
        net["network"]["caPublicKey"] = mallory_ca.public_b64
    mesh.write_configs("delta", net)
    args = ["-c", "/etc/wg_netmanager/net.yaml", "-i", "wg0", "-a", "10.1.1.9", "-n", "mallory", "-v"]
    if spec is not None:
        name, wg_ip, ca, serial, validity = spec
        cert_key = public_key(mesh, "charlie") if name == "charlie" else key
        write_cert(mesh, "delta", name, wg_ip, cert_key, ca, serial, validity)
        args += ["--cert", CERT_FILE]
    cmd = [PYTHON, "-c", UNCHECKED, *args] if modified else [PYTHON, "-m", "wg_netmanager", *args]
    log = open(mesh.logs / f"mallory-{case.replace(' ', '-')}.log", "w")  # noqa: SIM115
    proc = mesh.lab.host("delta").popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.mark.timeout(300)
def test_no_honest_node_accepts_a_member_without_a_valid_certificate(mesh_on: Any) -> None:
    mesh = mesh_on("seed-basic", HONEST, cls=CaMesh)
    wait_for(mesh.all_ping, 60, interval=0.5, what="the certified mesh pings")
    assert all((mesh.status(h) or {}).get("mode") == "ca" for h in HONEST)
    key = public_key(mesh, "delta")
    for case in CASES:
        before = rejected(mesh)
        proc = run_mallory(mesh, case, key)
        try:
            # Its HELLOs reach beta and are refused, again and again; meanwhile it tries
            # everyone it may have heard of.
            wait_for(
                lambda b=before: rejected(mesh) >= b + 3 or knowers(mesh, key),
                30,
                interval=0.3,
                what=f"{case}: refused",
            )
            assert proc.poll() is None, f"{case}: mallory's agent exited"
            assert knowers(mesh, key) == [], case
        finally:
            stop(proc)
    # The control case: the same key with a valid certificate is taken by everyone.
    write_cert(mesh, "delta", "mallory", "10.1.1.9", key)
    mesh.write_configs("delta")
    proc = mesh.lab.host("delta").popen(
        [PYTHON, "-m", "wg_netmanager", "-c", "/etc/wg_netmanager/net.yaml", "-i", "wg0", "-a", "10.1.1.9"]
        + ["-n", "mallory", "--cert", CERT_FILE],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: sorted(knowers(mesh, key)) == HONEST, 30, interval=0.5, what="a valid cert is taken")
    finally:
        stop(proc)
    assert base64.b64decode(key)  # a real key was used throughout
