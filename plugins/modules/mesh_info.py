#!/usr/bin/python
# ruff: noqa: E402, EXE001  (Ansible: docs before imports; shebang on a non-executable module)
# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mesh_info
short_description: Read the status of the local wg_netmanager agent
version_added: 0.1.0
description:
  - Connects to the status socket of the wg_netmanager agent on the managed host, reads the
    status document (the same JSON as C(wg_netmanager status --json)) and returns it as the
    fact C(wg_mesh), with a short summary at the top level.
  - Read-only; never changes anything.
author:
  - wg_netmanager contributors (@wg-netmanager)
attributes:
  check_mode:
    support: full
    description: Reads the status in check mode too.
  diff_mode:
    support: none
    description: Nothing to diff.
  facts:
    support: full
    description: Sets the fact C(wg_mesh).
options:
  interface:
    description:
      - The WireGuard interface the agent manages; selects the socket
        C(/run/wg_netmanager/<interface>.sock).
    type: str
    default: wg0
  socket:
    description:
      - Path of the status socket, overriding the one derived from O(interface).
    type: path
  fail_on_missing:
    description:
      - Fail when the agent is not running (no socket, or nothing listening on it).
      - When V(false), return RV(running=false) and RV(converged=false) instead, and set the
        fact C(wg_mesh) to a document with C(running=false), C(converged=false) and no
        C(peers).
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the complete status document.
    type: float
    default: 5.0
seealso:
  - module: wg_netmanager.mesh.mesh_validate
notes:
  - The socket is only accessible to root (mode 0600), so use C(become=true).
  - The status contains public keys and addresses, never private or shared keys.
"""

EXAMPLES = r"""
- name: Read the mesh status of every node
  wg_netmanager.mesh.mesh_info:
  become: true

- name: Wait until the node has a path to every other node
  wg_netmanager.mesh.mesh_info:
    interface: wg1
  become: true
  register: mesh
  until: mesh.converged
  retries: 30
  delay: 2

- name: Report nodes whose agent is not running, without failing
  wg_netmanager.mesh.mesh_info:
    fail_on_missing: false
  become: true
  register: mesh

- name: Print who reaches whom, and how
  ansible.builtin.debug:
    msg: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'wg_mesh')))
             | wg_netmanager.mesh.reachability_table }}"
  run_once: true
"""

RETURN = r"""
running:
  description: Whether the agent answered on the status socket.
  returned: always
  type: bool
  sample: true
converged:
  description: Whether the node has a path other than C(none) to every node it knows.
  returned: always
  type: bool
  sample: true
peers:
  description: The C(peers) list of the status document (empty when not running).
  returned: always
  type: list
  elements: dict
  sample:
    - name: beta
      wgIp: 10.1.1.2
      publicKey: "kT3d...="
      path: static
      gateway: null
      endpoint: 198.51.100.2:50000
      lastHandshake: 1732540000.0
      rxBytes: 123
      txBytes: 456
paths:
  description: Peer name to path kind (C(static), C(lan), C(nat), C(gateway) or C(none)).
  returned: always
  type: dict
  sample:
    beta: static
    charlie: gateway
subnets:
  description:
    - Subnet gateways as the node sees them; C(own) the LAN subnets it routes into the mesh,
      C(routes) each announced subnet it routes with the node it goes to, C(refused) the ones it
      refuses (C(subnet), C(node), C(reason)).
  returned: always
  type: dict
  sample:
    own: []
    routes:
      192.168.50.0/24: delta
    refused: []
leaves:
  description:
    - The leaves (agent-less WireGuard peers) as the node sees them, by name - C(path) with the
      peers' vocabulary (C(nat) at its home while its session is fresh, C(gateway) through the
      home elsewhere, C(none)), C(gateway) the relaying home, C(home) its home node.
  returned: always
  type: dict
  sample:
    phone:
      path: gateway
      gateway: beta
      home: beta
exit_node:
  description:
    - C(offers) whether this node offers the mesh its internet access, C(uses) the exit node it
      is set to use (or null), C(active) whether its internet traffic goes through it now.
  returned: always
  type: dict
  sample:
    offers: false
    uses: beta
    active: true
mobile:
  description:
    - Whether the node is a data-limited mobile node (peer.yaml C(mode=mobile), inventory variable
      C(wg_mode)); V(false) when the agent is not running or predates mobile nodes.
  returned: always
  type: bool
  sample: false
socket:
  description: The socket that was read.
  returned: always
  type: str
  sample: /run/wg_netmanager/wg0.sock
ansible_facts:
  description: Facts set by this module.
  returned: always
  type: dict
  contains:
    wg_mesh:
      description:
        - The agent's status document, as C(wg_netmanager status --json) prints it.
        - When the agent is not running and O(fail_on_missing=false), a document with
          C(running=false), C(converged=false) and an empty C(peers) list.
      returned: always
      type: dict
      sample:
        name: alpha
        wgIp: 10.1.1.1
        interface: wg0
        backend: wireguard-go
        converged: true
        peers: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wg_netmanager.mesh.plugins.module_utils.mesh_status import (
    NOT_RUNNING,
    AgentNotRunning,
    StatusError,
    not_running_facts,
    read_status,
    socket_path,
    summarize,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "interface": {"type": "str", "default": "wg0"},
            "socket": {"type": "path"},
            "fail_on_missing": {"type": "bool", "default": True},
            "timeout": {"type": "float", "default": 5.0},
        },
        supports_check_mode=True,
    )
    path = module.params["socket"] or socket_path(module.params["interface"])
    try:
        status = read_status(path, module.params["timeout"])
    except AgentNotRunning as exc:
        if module.params["fail_on_missing"]:
            module.fail_json(msg=str(exc), running=False, converged=False, socket=path)
        facts = not_running_facts()
        module.exit_json(changed=False, socket=path, ansible_facts={"wg_mesh": facts}, **NOT_RUNNING)
    except StatusError as exc:
        module.fail_json(msg=str(exc), socket=path)
    module.exit_json(
        changed=False,
        socket=path,
        ansible_facts={"wg_mesh": status},
        **summarize(status),
    )


if __name__ == "__main__":
    main()
