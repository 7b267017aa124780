#!/usr/bin/python
# ruff: noqa: E402, EXE001  (Ansible: docs before imports; shebang on a non-executable module)
# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_preflight
short_description: Check that nothing else holds the agent's WireGuard interface or UDP ports
version_added: 0.1.0
description:
  - Looks on the managed host for what would make the wg_netmanager agent fail at start, before
    anything is installed or written there, so that the play stops with one message instead of
    an agent that restarts over and over.
  - The interface O(interface) must not exist, or must carry the agent's ownership marker
    (C(<state_dir>/<interface>.created.json), which the agent writes before it creates an
    interface; or the same in O(legacy_state_dir)). With O(existing_interface=true) it must
    exist instead. An interface that is not the agent's is reported with the userspace
    WireGuard daemon that runs it, if one does.
  - Each UDP port (the WireGuard port and the control port, computed from O(name) as the agent
    does when they are V(0)) must be free, held by the agent running from O(venv), or, for the
    WireGuard port of an interface the agent owns, by its userspace daemon (C(wireguard-go),
    C(boringtun)) or the kernel.
  - Read-only; never changes anything.
author:
  - wg_netmanager contributors (@wg-netmanager)
attributes:
  check_mode:
    support: full
    description: Checks in check mode too.
  diff_mode:
    support: none
    description: Nothing to diff.
options:
  interface:
    description: The WireGuard interface the agent manages.
    type: str
    default: wg0
  existing_interface:
    description: The agent adopts an interface created by someone else (peer.yaml C(existingInterface)).
    type: bool
    default: false
  name:
    description: The node's name in the mesh; the agent derives its WireGuard port from it when O(wg_port=0).
    type: str
    required: true
  wg_port:
    description: The WireGuard UDP port; V(0) for the port the agent derives from O(name).
    type: int
    default: 0
  admin_port:
    description: The agent's control port; V(0) for the agent's default (WireGuard port + 1).
    type: int
    default: 0
  venv:
    description: The agent's virtualenv; a process running a program from its C(bin/) is the agent.
    type: path
    default: /opt/wg_netmanager/venv
  state_dir:
    description: The agent's state directory, where it keeps the interface ownership marker.
    type: path
    default: /var/lib/wg_netmanager
  legacy_state_dir:
    description:
      - Where an older deployment kept the agent's state; its ownership marker counts too (the
        agent role moves it to O(state_dir) after this check).
    type: path
  fail_on_conflict:
    description: Fail with all conflicts in one message; with V(false), only return them in RV(conflicts).
    type: bool
    default: true
notes:
  - Needs root (C(become=true)) to see which process holds a socket.
  - Ports are checked through C(/proc) (Linux); elsewhere RV(ports_checked) is V(false) and only the
    interface is checked.
seealso:
  - module: wg_netmanager.mesh.mesh_validate
"""

EXAMPLES = r"""
- name: Stop before installing if something else uses the agent's interface or ports
  wg_netmanager.mesh.node_preflight:
    name: "{{ wg_name }}"
    interface: "{{ wg_interface }}"
    wg_port: "{{ wg_port }}"
    admin_port: "{{ wg_admin_port }}"
  become: true

- name: Only report conflicts
  wg_netmanager.mesh.node_preflight:
    name: alice
    wg_port: 51820
    fail_on_conflict: false
  become: true
  register: claims
"""

RETURN = r"""
conflicts:
  description: One message per conflict, naming the variable to change; empty when there is none.
  returned: always
  type: list
  elements: str
  sample:
    - >-
      UDP port 51820 (wg_port) is in use by PID 812 (/usr/bin/wireguard-go wg1): stop it or
      choose another wg_port
    - >-
      interface wg0 already exists, run by PID 640 (/usr/bin/wireguard-go wg0), and was not
      created by wg_netmanager (no /var/lib/wg_netmanager/wg0.created.json): delete it, choose
      another wg_interface, or adopt it with wg_existing_interface: true
interface:
  description: What was found about O(interface).
  returned: always
  type: dict
  sample: {name: wg0, exists: true, ours: true, marker: true}
ports:
  description: >-
    For each port the agent will bind: whether it is in use, by whom, and whether that is the
    agent (or its own WireGuard).
  returned: always
  type: list
  elements: dict
  sample:
    - var: admin_port
      port: 51821
      in_use: true
      ours: true
      kernel: false
      holders:
        - pid: 901
          command: [/opt/wg_netmanager/venv/bin/python3, /opt/wg_netmanager/venv/bin/wg_netmanager]
ports_checked:
  description: Whether the ports could be checked (V(false) without C(/proc/net/udp)).
  returned: always
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wg_netmanager.mesh.plugins.module_utils.node_preflight import agent_ports, check_node


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "interface": {"type": "str", "default": "wg0"},
            "existing_interface": {"type": "bool", "default": False},
            "name": {"type": "str", "required": True},
            "wg_port": {"type": "int", "default": 0},
            "admin_port": {"type": "int", "default": 0},
            "venv": {"type": "path", "default": "/opt/wg_netmanager/venv"},
            "state_dir": {"type": "path", "default": "/var/lib/wg_netmanager"},
            "legacy_state_dir": {"type": "path"},
            "fail_on_conflict": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    result = check_node(
        p["interface"],
        p["existing_interface"],
        agent_ports(p["name"], p["wg_port"], p["admin_port"]),
        p["venv"],
        state_dir=p["state_dir"],
        legacy_state_dir=p["legacy_state_dir"],
    )
    if result["conflicts"] and p["fail_on_conflict"]:
        module.fail_json(msg="; ".join(result["conflicts"]), **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
