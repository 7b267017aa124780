"""`ca init`, `cert sign`, `cert show` and `pubkey` through the command line: files, modes,
no overwriting, one-line errors, and the CA key never printed."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from wg_netmanager import certcmd, certfiles, cliargs
from wg_netmanager.cli import main
from wg_netmanager.core.cert import verify
from wg_netmanager.keystore import load_or_create_private_key

NODE_KEY = base64.b64encode(bytes(range(100, 132))).decode()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err.strip()


@pytest.fixture
def ca_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["ca", "init", str(tmp_path / "ca")]) == 0
    capsys.readouterr()
    return tmp_path / "ca"


def seed_texts(ca_dir: Path) -> list[str]:
    """The CA secret in every form it could leak in."""
    seed = certfiles.read_ca_key(ca_dir / "ca.key").seed()
    return [base64.b64encode(seed).decode(), seed.hex(), repr(seed)[2:-1]]


def sign(ca_dir: Path, out: Path, *extra: str) -> int:
    return main(
        [
            *("cert", "sign", "--ca-key", str(ca_dir / "ca.key"), "--name", "alice"),
            *("--wg-ip", "10.1.1.5", "--public-key", NODE_KEY, "-o", str(out), *extra),
        ]
    )


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_ca_init_files_modes_and_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], open_umask: None
) -> None:
    directory = tmp_path / "ca"
    assert main(["ca", "init", str(directory)]) == 0
    out, err = capsys.readouterr()
    assert mode(directory) == 0o700
    assert mode(directory / "ca.key") == 0o600
    assert mode(directory / "ca.pub") == 0o644
    assert sorted(p.name for p in directory.iterdir()) == ["ca.key", "ca.pub"]  # no temp files
    pub = (directory / "ca.pub").read_text()
    assert out == pub and len(base64.b64decode(pub)) == 32
    assert certfiles.read_ca_key(directory / "ca.key").public_b64 == pub.strip()
    assert (directory / "ca.key").read_text().startswith("-----BEGIN WG_NETMANAGER CA PRIVATE KEY-----\n")
    assert "ca.key" in err and "ca.pub" in err
    for secret in seed_texts(directory):
        assert secret not in out + err


def test_ca_init_never_overwrites(ca_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (ca_dir / "ca.key").read_bytes(), (ca_dir / "ca.pub").read_bytes()
    assert main(["ca", "init", str(ca_dir)]) == 2
    assert one_error_line(capsys) == f"{ca_dir / 'ca.key'}: (file): already exists: a CA is never overwritten"
    assert ((ca_dir / "ca.key").read_bytes(), (ca_dir / "ca.pub").read_bytes()) == before
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "ca.pub").write_text("someone else's\n")
    assert main(["ca", "init", str(tmp_path / "half")]) == 2
    assert "ca.pub: (file): already exists" in one_error_line(capsys)
    assert not (tmp_path / "half" / "ca.key").exists()


def test_pubkey_creates_the_key_and_prints_only_the_public_half(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    assert main(["pubkey", "-i", "wg7", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    key = load_or_create_private_key(state, "wg7")
    assert out == key.public_b64 + "\n"
    assert key.private_b64() not in out
    assert mode(state / "wg7" / "private.key") == 0o600
    assert main(["pubkey", "--interface", "wg7", "--state-dir", str(state)]) == 0
    assert capsys.readouterr().out == out  # the same key, not a new one
    assert main(["pubkey", "-i", "bad/name", "--state-dir", str(state)]) == 2
    assert one_error_line(capsys).startswith("command line: --interface: invalid interface name")


def test_sign_then_show(
    ca_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    out_file = tmp_path / "certs" / "alice.crt"
    out_file.parent.mkdir()
    old = os.umask(0o077)
    try:
        with caplog.at_level(logging.DEBUG):
            rc = sign(
                ca_dir, out_file, "--subnet", "192.168.1.0/24", "--subnet", "10.20.0.0/16", "--days", "30"
            )
    finally:
        os.umask(old)
    assert rc == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{out_file}: certificate for alice (10.1.1.5), serial ") and not err
    assert mode(out_file) == 0o644  # public, whatever the umask
    assert out_file.read_text().startswith("-----BEGIN WG_NETMANAGER CERTIFICATE-----\n")
    cert = certfiles.read_cert(out_file)
    assert (cert.name, str(cert.wg_ip), cert.public_key) == ("alice", "10.1.1.5", NODE_KEY)
    assert [str(s) for s in cert.subnets] == ["192.168.1.0/24", "10.20.0.0/16"]
    assert cert.not_after - cert.not_before == 30 * 86400 + certcmd.BACKDATE
    verify(cert, certfiles.read_ca_public_key(ca_dir / "ca.pub"), certcmd._now())

    assert main(["cert", "show", str(out_file), "--ca", str(ca_dir / "ca.pub")]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0] == f"certificate {out_file}"
    columns = {re.match(r"  \S+(?: \S+)*\s{2,}", line).end() for line in lines[1:]}  # type: ignore[union-attr]
    assert len(columns) == 1  # every value starts in the same column
    for expected in ("name         alice", "subnets      192.168.1.0/24, 10.20.0.0/16", "status       valid"):
        assert f"  {expected}" in lines
    assert f"  serial       {cert.serial:016x}" in lines

    assert main(["cert", "show", "--json", str(out_file)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["name"] == "alice" and doc["wgIp"] == "10.1.1.5" and doc["publicKey"] == NODE_KEY
    assert doc["serial"] == f"{cert.serial:016x}" and doc["subnets"] == ["192.168.1.0/24", "10.20.0.0/16"]
    assert doc["notAfter"] == cert.not_after and doc["verified"] is False
    assert doc["issuer"] == (ca_dir / "ca.pub").read_text().strip()
    for secret in seed_texts(ca_dir):
        assert secret not in out + err + text + caplog.text


def test_sign_refuses_to_overwrite_without_force(
    ca_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "alice.crt"
    out_file.write_text("keep me")
    assert sign(ca_dir, out_file) == 2
    assert one_error_line(capsys) == f"{out_file}: (file): already exists (give --force to replace it)"
    assert out_file.read_text() == "keep me"
    assert sign(ca_dir, out_file, "--force") == 0
    assert certfiles.read_cert(out_file).name == "alice"
    assert mode(out_file) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice.crt", "ca"]


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("--name", "-bad", "command line: --name: invalid name"),
        ("--name", "n" * 33, "command line: --name: too long"),
        ("--wg-ip", "10.1.1.300", "command line: --wg-ip: not an IPv4 address"),
        ("--public-key", "not base64!", "command line: --public-key: must be a WireGuard public key"),
        ("--public-key", base64.b64encode(bytes(31)).decode(), "command line: --public-key: must be"),
        ("--public-key", base64.b64encode(bytes(32)).decode(), "command line: --public-key: the all-zero"),
        ("--subnet", "192.168.1.1/24", "command line: --subnet: host bits set in '192.168.1.1/24'"),
        ("--subnet", "192.168.1.0", "command line: --subnet: missing prefix length"),
        ("--subnet", "fd00::/64", "command line: --subnet: not an IPv4 network"),
        ("--days", "0", "command line: --days: must be a whole number of days"),
        ("--days", "-3", "command line: --days:"),
        ("--days", "36501", "command line: --days:"),
        ("--days", "²", "command line: --days:"),
    ],
)
def test_sign_rejects_bad_input(
    ca_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, reason: str
) -> None:
    out_file = tmp_path / "x.crt"
    args = ["cert", "sign", "--ca-key", str(ca_dir / "ca.key"), "--name", "alice", "--wg-ip", "10.1.1.5"]
    args += ["--public-key", NODE_KEY, "-o", str(out_file), f"{option}={value}"]
    assert main(args) == 2
    assert one_error_line(capsys).startswith(reason)
    assert not out_file.exists()


def test_sign_rejects_too_many_or_repeated_subnets(
    ca_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nine = [arg for i in range(9) for arg in ("--subnet", f"10.{i}.0.0/16")]
    assert sign(ca_dir, tmp_path / "x.crt", *nine) == 2
    assert one_error_line(capsys) == "command line: --subnet: 9 given, at most 8"
    assert sign(ca_dir, tmp_path / "x.crt", "--subnet", "10.0.0.0/8", "--subnet", "10.0.0.0/8") == 2
    assert one_error_line(capsys) == "command line: --subnet: 10.0.0.0/8 given twice"


def test_sign_checks_the_ca_key_file(
    ca_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ca_dir / "ca.key"
    key.chmod(0o644)
    assert sign(ca_dir, tmp_path / "x.crt") == 2
    assert one_error_line(capsys) == f"{key}: (file): mode 0644 lets others read the CA key; chmod 600 it"
    key.chmod(0o600)
    key.write_text("garbage\n")
    assert sign(ca_dir, tmp_path / "x.crt") == 2
    assert "(file): not a wg_netmanager ca private key" in one_error_line(capsys)
    key.unlink()
    assert sign(ca_dir, tmp_path / "x.crt") == 2
    assert "(file): cannot read: No such file or directory" in one_error_line(capsys)
    assert not (tmp_path / "x.crt").exists()


def test_usage_mistakes_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["cert"], ["cert", "sign"], ["ca"], ["ca", "frobnicate"], ["cert", "show"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        one_error_line(capsys)


def test_show_reports_invalid_certificates(
    ca_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    crt = tmp_path / "alice.crt"
    assert sign(ca_dir, crt, "--days", "1") == 0
    assert main(["ca", "init", str(tmp_path / "other")]) == 0
    capsys.readouterr()
    assert main(["cert", "show", str(crt), "--ca", str(tmp_path / "other" / "ca.pub")]) == 1
    out, err = capsys.readouterr()
    assert "  status       other issuer" in out
    assert err.startswith(f"{crt}: certificate: other issuer") and len(err.splitlines()) == 1
    now = certcmd._now()
    monkeypatch.setattr(certcmd, "_now", lambda: now + 2 * 86400)
    assert main(["cert", "show", str(crt)]) == 1
    assert capsys.readouterr().err == f"{crt}: certificate: expired\n"
    assert main(["cert", "show", "--json", str(crt), "--ca", str(ca_dir / "ca.pub")]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"].startswith("expired") and doc["verified"] is False


def test_show_rejects_broken_files(ca_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    crt = tmp_path / "alice.crt"
    assert sign(ca_dir, crt) == 0
    capsys.readouterr()
    lines = crt.read_text().splitlines()
    broken = tmp_path / "broken.crt"
    for text, reason in [
        ("hello\n", "(file): not a wg_netmanager certificate"),
        ("\n".join(lines[:-1]), "(file): no -----END WG_NETMANAGER CERTIFICATE----- line"),
        ("\n".join([lines[0], lines[1][:-4], lines[-1]]), "certificate: truncated"),
        ("\n".join([lines[0], "!!!!", lines[-1]]), "(file): not valid base64"),
    ]:
        broken.write_text(text)
        assert main(["cert", "show", str(broken)]) == 2
        line = one_error_line(capsys)
        assert line.startswith(f"{broken}: {reason}"), line
    assert main(["cert", "show", str(tmp_path)]) == 2
    assert one_error_line(capsys).endswith("(file): not a regular file")


def test_commands_are_listed_in_the_help() -> None:
    for text in ("pubkey", "ca init", "cert"):
        assert f"\n  {text} " in cliargs.RUN_EPILOG
