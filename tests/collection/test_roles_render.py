"""Per-OS choices of the roles, for the systems this machine cannot run.

Each fake host below is localhost with the facts of another OS. The roles' preflight tasks
pick their vars/<OS>.yml with first_found; the test reads the resulting package lists and
settings, and renders the agent's service definitions for systemd, OpenRC and procd.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import collection_paths
import pytest
import yaml
from collection_paths import COLLECTION_ROOT, ansible_bin
from os_hosts import facts as _facts

pytestmark = pytest.mark.collection


HOSTS = {
    "debian": _facts("Debian", "Debian", "systemd", wg_backend="wireguard-go"),
    "ubuntu": _facts("Ubuntu", "Debian", "systemd", wg_backend="kernel"),
    "rhel": _facts("RedHat", "RedHat", "systemd", wg_backend="kernel"),
    "fedora": _facts("Fedora", "RedHat", "systemd", wg_backend="kernel"),
    "alpine": _facts("Alpine", "Alpine", "openrc", wg_backend="wireguard-go"),
    "arch": _facts("Archlinux", "Archlinux", "systemd", wg_backend="boringtun"),
    "openwrt": _facts("OpenWrt", "OpenWrt", "openwrt_init"),
    "macos": _facts("MacOSX", "Darwin", "launchd", wg_service_manager="none"),
    "freebsd": _facts("FreeBSD", "FreeBSD", "bsdinit", wg_service_manager="none"),
    "solaris": _facts("Solaris", "Solaris", "smf"),
    "debian-boringtun": _facts("Debian", "Debian", "systemd", wg_backend="boringtun"),
    "alpine-static": _facts(
        "Alpine",
        "Alpine",
        "openrc",
        wg_backend="wireguard-go",
        wg_static_endpoint="vps.example.org:51820",
        wg_exit_node=True,
    ),
    "debian-gateway": _facts(
        "Debian",
        "Debian",
        "systemd",
        wg_backend="wireguard-go",
        wg_subnets=["192.168.50.0/24"],
        wg_masquerade=True,
        wg_use_exit_node="alpine-static",
    ),
    "debian-mobile": _facts("Debian", "Debian", "systemd", wg_backend="wireguard-go", wg_mode="mobile"),
    "debian-py38": _facts(
        "Debian",
        "Debian",
        "systemd",
        wg_backend="wireguard-go",
        ansible_python={"version": {"major": 3, "minor": 8}, "executable": "/usr/bin/python3.8"},
    ),
}

PLAYBOOK = """
- name: Show what the roles choose per OS
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the wireguard role's preflight
      ansible.builtin.include_role:
        name: wg_netmanager.mesh.wireguard
        tasks_from: preflight.yml
        public: true
    - name: Run the agent role's preflight
      ansible.builtin.include_role:
        name: wg_netmanager.mesh.agent
        tasks_from: preflight.yml
        public: true
    - name: Report the choices
      ansible.builtin.debug:
        msg:
          packages: "{{ wg_packages }}"
          package_manager: "{{ wg_os_package_manager }}"
          backend: "{{ wg_backend_effective }}"
          agent_packages: "{{ wg_agent_packages }}"
          python_deps: "{{ wg_agent_python_deps }}"
          wheel_platforms: "{{ wg_agent_wheel_platforms }}"
          service_manager: "{{ wg_agent_service_manager }}"
          command: "{{ wg_agent_command }}"
    - name: Render peer.yaml and the service definitions
      ansible.builtin.template:
        src: "{{ templates }}/{{ item }}.j2"
        dest: "{{ out }}/{{ inventory_hostname }}-{{ item }}"
        mode: "0644"
      loop: [peer.yaml, wg_netmanager.service, wg_netmanager.openrc, wg_netmanager.procd]
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """Run the playbook once for all fake hosts: (host -> result, output directory)."""
    tmp = tmp_path_factory.mktemp("render")
    out = tmp / "out"
    out.mkdir()
    inventory = tmp / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": HOSTS}}))
    playbook = tmp / "render.yml"
    playbook.write_text(PLAYBOOK)
    # Module scope: one playbook run serves every test, so build the env here rather than
    # through the function-scoped ansible_env fixture.
    env = collection_paths.ansible_environment(tmp)
    proc = subprocess.run(
        [
            ansible_bin("ansible-playbook"),
            "-i",
            str(inventory),
            str(playbook),
            "-e",
            json.dumps({"out": str(out), "templates": str(COLLECTION_ROOT / "roles/agent/templates")}),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"no JSON output:\n{proc.stdout}\n{proc.stderr}") from None
    results: dict[str, Any] = {}
    for task in doc["plays"][0]["tasks"]:
        for host, result in task["hosts"].items():
            if result.get("failed"):
                results[host] = {"failed": result.get("msg", "")}
            elif task["task"]["name"] == "Report the choices":
                results[host] = result["msg"]
    return results, out


@pytest.mark.parametrize(
    ("host", "manager", "packages", "backend"),
    [
        ("debian", "apt", ["wireguard-tools", "wireguard-go"], "wireguard-go"),
        ("ubuntu", "apt", ["wireguard-tools"], "kernel"),
        ("rhel", "dnf", ["wireguard-tools"], "kernel"),
        ("fedora", "dnf", ["wireguard-tools"], "kernel"),
        ("alpine", "apk", ["wireguard-tools-wg", "iproute2", "wireguard-go"], "wireguard-go"),
        ("arch", "pacman", ["wireguard-tools", "boringtun"], "boringtun"),
        ("openwrt", "opkg", ["wireguard-tools", "python3", "kmod-wireguard"], "kernel"),
        ("macos", "homebrew", ["wireguard-tools", "wireguard-go"], "wireguard-go"),
        ("freebsd", "pkgng", ["wireguard-tools"], "kernel"),
    ],
)
def test_wireguard_packages_per_os(
    rendered: tuple[dict[str, Any], Path], host: str, manager: str, packages: list[str], backend: str
) -> None:
    result = rendered[0][host]
    assert "failed" not in result, result
    assert result["package_manager"] == manager
    assert result["packages"] == packages
    assert result["backend"] == backend


@pytest.mark.parametrize(
    ("host", "deps", "agent_packages", "service_manager"),
    [
        ("debian", "wheels", ["python3-venv"], "systemd"),
        ("alpine", "wheels", ["python3"], "openrc"),
        (
            "openwrt",
            "system",
            ["python3", "python3-venv", "python3-yaml", "python3-cryptography", "python3-pyroute2"],
            "procd",
        ),
        ("macos", "index", [], "none"),
        ("freebsd", "index", ["python3"], "none"),
    ],
)
def test_agent_settings_per_os(
    rendered: tuple[dict[str, Any], Path],
    host: str,
    deps: str,
    agent_packages: list[str],
    service_manager: str,
) -> None:
    result = rendered[0][host]
    assert "failed" not in result, result
    assert result["python_deps"] == deps
    assert result["agent_packages"] == agent_packages
    assert result["service_manager"] == service_manager


def test_wheel_platforms_follow_libc_and_architecture(rendered: tuple[dict[str, Any], Path]) -> None:
    results = rendered[0]
    assert results["debian"]["wheel_platforms"] == ["manylinux_2_28_aarch64", "manylinux2014_aarch64"]
    assert results["alpine"]["wheel_platforms"] == ["musllinux_1_2_aarch64", "musllinux_1_1_aarch64"]


def test_unsupported_os_fails_with_a_readable_message(rendered: tuple[dict[str, Any], Path]) -> None:
    message = rendered[0]["solaris"]["failed"]
    assert "solaris" in message and "Solaris" in message and "supported" in message


def test_unpackaged_backend_fails_with_a_readable_message(rendered: tuple[dict[str, Any], Path]) -> None:
    message = rendered[0]["debian-boringtun"]["failed"]
    assert "debian-boringtun" in message and "boringtun" in message and "Debian" in message


def test_peer_yaml_takes_ports_from_the_static_endpoint(rendered: tuple[dict[str, Any], Path]) -> None:
    out = rendered[1]
    peer = yaml.safe_load((out / "alpine-static-peer.yaml").read_text())
    assert peer == {
        "name": "alpine-static",
        "wgIp": "10.1.1.9",
        "wgInterface": "wg0",
        "existingInterface": False,
        "wgPort": 51820,
        "adminPort": 51821,
        "backend": "wireguard-go",
        "exitNode": True,
    }
    # Other nodes leave the port to the agent, which derives one from the name (distinct
    # ports behind one NAT router).
    dynamic = yaml.safe_load((out / "alpine-peer.yaml").read_text())
    assert "wgPort" not in dynamic and "adminPort" not in dynamic


def test_peer_yaml_of_a_subnet_gateway(rendered: tuple[dict[str, Any], Path]) -> None:
    out = rendered[1]
    peer = yaml.safe_load((out / "debian-gateway-peer.yaml").read_text())
    assert (peer["subnets"], peer["masquerade"]) == (["192.168.50.0/24"], True)
    assert peer["useExitNode"] == "alpine-static" and "exitNode" not in peer
    plain = yaml.safe_load((out / "debian-peer.yaml").read_text())
    assert not {"subnets", "masquerade", "exitNode", "useExitNode"} & set(plain)


def test_peer_yaml_of_a_mobile_node(rendered: tuple[dict[str, Any], Path]) -> None:
    out = rendered[1]
    assert yaml.safe_load((out / "debian-mobile-peer.yaml").read_text())["mode"] == "mobile"
    # A normal node's peer.yaml has no mode line at all (it reads as it did before modes).
    plain = (out / "debian-peer.yaml").read_text()
    assert not [line for line in plain.splitlines() if line.startswith("mode:")]


def test_systemd_unit_is_hardened(rendered: tuple[dict[str, Any], Path]) -> None:
    unit = (rendered[1] / "debian-wg_netmanager.service").read_text()
    lines = set(unit.splitlines())
    for expected in [
        "ExecStart=/opt/wg_netmanager/venv/bin/wg_netmanager -c /etc/wg_netmanager/net.yaml"
        " -p /etc/wg_netmanager/peer.yaml",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/wg_netmanager /run/wg_netmanager /var/run/wireguard",
        "ProtectHome=true",
        "NoNewPrivileges=true",
        "Restart=on-failure",
        "RestartSec=2",
    ]:
        assert expected in lines, unit


def test_openrc_script_supervises_and_respawns(rendered: tuple[dict[str, Any], Path]) -> None:
    script = (rendered[1] / "alpine-wg_netmanager.openrc").read_text()
    assert script.startswith("#!/sbin/openrc-run\n")
    assert "supervisor=supervise-daemon" in script
    assert 'command="/opt/wg_netmanager/venv/bin/wg_netmanager"' in script
    assert 'command_args="-c /etc/wg_netmanager/net.yaml -p /etc/wg_netmanager/peer.yaml"' in script
    assert "respawn_delay=2" in script and "respawn_max=0" in script


def test_procd_script_respawns(rendered: tuple[dict[str, Any], Path]) -> None:
    script = (rendered[1] / "openwrt-wg_netmanager.procd").read_text()
    assert script.startswith("#!/bin/sh /etc/rc.common\n")
    assert "USE_PROCD=1" in script
    assert (
        "procd_set_param command /opt/wg_netmanager/venv/bin/wg_netmanager"
        " -c /etc/wg_netmanager/net.yaml -p /etc/wg_netmanager/peer.yaml" in script
    )
    assert "procd_set_param respawn" in script


def test_every_service_definition_reloads_with_sighup(rendered: tuple[dict[str, Any], Path]) -> None:
    """A reload (rotate.yml, a key-only change of net.yaml) is a SIGHUP, never a restart."""
    out = rendered[1]
    unit = (out / "debian-wg_netmanager.service").read_text()
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit.splitlines()
    openrc = (out / "alpine-wg_netmanager.openrc").read_text()
    assert 'extra_started_commands="reload"' in openrc
    assert (
        'reload() {\n\tebegin "Reloading ${RC_SVCNAME}"\n\tsupervise-daemon "${RC_SVCNAME}" --signal HUP\n'
        in openrc
    )
    procd = (out / "openwrt-wg_netmanager.procd").read_text()
    assert "reload_service() {\n\tprocd_send_signal wg_netmanager '*' HUP\n}" in procd


def test_python_older_than_the_agents_requirement_fails_in_preflight(
    rendered: tuple[dict[str, Any], Path],
) -> None:
    message = rendered[0]["debian-py38"]["failed"]
    assert "debian-py38: the agent needs Python 3.9 or later" in message
    assert "/usr/bin/python3.8" in message and "ansible_python_interpreter" in message
