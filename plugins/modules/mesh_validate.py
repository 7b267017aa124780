#!/usr/bin/python
# ruff: noqa: E402, EXE001  (Ansible: docs before imports; shebang on a non-executable module)
# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mesh_validate
short_description: Check a WireGuard mesh described by the inventory
version_added: 0.1.0
description:
  - Checks the subnet and every node of a wg_netmanager mesh before anything is deployed,
    and reports B(all) problems at once, each naming the inventory host and the variable.
  - Checks that O(subnet) is an IPv4 CIDR; that each node has a C(wg_ip) inside the subnet
    which is neither its network nor its broadcast address; that addresses, names, inventory
    hosts and static endpoints are unique; that static endpoints are C(host-or-ip:port);
    that admin ports are valid ports; that at least one node has a static endpoint; that
    each C(wg_use_exit_node) names an exit node the agents accept; and that no static node is
    mobile (C(wg_mode)).
  - On success returns the C(peers) mapping of C(net.yaml) (the static nodes) and the nodes
    normalised (defaults filled in).
  - With O(leaves), checks the agent-less peers too (inventory group C(wg_leaves)), each one's
    C(wg_ip) inside the subnet and unique among nodes and leaves, its name valid and unique, its
    home a static node, its AllowedIPs, DNS and keepalive; and returns them normalised.
  - Pure computation on the controller, meant for C(delegate_to=localhost) and
    C(run_once=true). It never changes anything.
author:
  - wg_netmanager contributors (@wg-netmanager)
attributes:
  check_mode:
    support: full
    description: Runs the same checks in check mode.
  diff_mode:
    support: none
    description: Nothing to diff.
options:
  subnet:
    description:
      - The mesh subnet, inventory variable C(wg_subnet), for example C(10.1.1.0/24).
    type: str
    required: true
  nodes:
    description:
      - One entry per mesh host.
    type: list
    elements: dict
    required: true
    suboptions:
      host:
        description:
          - The inventory host name; used in messages.
        type: str
        required: true
      name:
        description:
          - The node name in the mesh (inventory variable C(wg_name)).
          - Defaults to O(nodes[].host).
        type: str
      wg_ip:
        description:
          - The node's address inside O(subnet) (inventory variable C(wg_ip)).
          - Missing values are reported as a problem, not rejected by argument parsing,
            so that every problem is listed at once.
        type: str
      static_endpoint:
        description:
          - C(host-or-ip:port) where others reach this node's WireGuard port (inventory
            variable C(wg_static_endpoint)). Nodes with one are static peers.
          - Host names are checked for syntax only; the agent resolves them.
        type: str
      admin_port:
        description:
          - The control (admin) UDP port (inventory variable C(wg_admin_port)).
          - Defaults, for static nodes, to the agent's default, the port of
            O(nodes[].static_endpoint) plus one (minus one for 65535).
          - Accepts an integer or a string of digits; anything else is reported as a problem.
        type: raw
      interface:
        description:
          - The WireGuard interface name (inventory variable C(wg_interface)).
        type: str
        default: wg0
      subnets:
        description:
          - LAN subnets the node routes into the mesh (inventory variable C(wg_subnets)), at most 8, none
            overlapping O(subnet) or another node's (the agents would route neither).
        type: list
        elements: str
        default: []
      exit_node:
        description:
          - The node offers the mesh its internet access (inventory variable C(wg_exit_node)).
        type: bool
        default: false
      use_exit_node:
        description:
          - The name of the exit node whose internet access this node uses (inventory variable
            C(wg_use_exit_node)). It must name another node with O(nodes[].exit_node), a static one
            unless O(ca); a node that is an exit uses none.
        type: str
      mode:
        description:
          - V(mobile) for a data-limited node (inventory variable C(wg_mode), peer.yaml C(mode)).
          - A static node (with O(nodes[].static_endpoint)) cannot be mobile; the agent would refuse it.
        type: str
        choices: [normal, mobile]
        default: normal
  ca:
    description:
      - The mesh has a network CA (inventory variable C(wg_ca_enabled)). Without one only a static
        node may be an exit node (the agents would refuse any other).
    type: bool
    default: false
  leaves:
    description:
      - One entry per leaf, a WireGuard peer without the agent (inventory group C(wg_leaves)).
    type: list
    elements: dict
    default: []
    suboptions:
      host:
        description: The inventory host name; used in messages.
        type: str
        required: true
      name:
        description:
          - The leaf's name in the mesh (inventory variable C(wg_name)); defaults to O(leaves[].host).
        type: str
      wg_ip:
        description: The leaf's address inside O(subnet) (inventory variable C(wg_ip)).
        type: str
      home:
        description:
          - The inventory host of the static node that holds the leaf as a WireGuard peer
            (inventory variable C(wg_leaf_home)); default the first static node of O(nodes).
        type: str
      allowed_ips:
        description:
          - What the leaf routes into its tunnel (inventory variable C(wg_leaf_allowed_ips));
            default O(subnet).
        type: list
        elements: str
      dns:
        description: Resolvers or search domains for the leaf (inventory variable C(wg_leaf_dns)).
        type: list
        elements: str
      keepalive:
        description:
          - Seconds between the leaf's keepalives (inventory variable C(wg_leaf_keepalive)), V(0)
            for none; default V(25). Anything but a number is reported as a problem.
        type: raw
seealso:
  - module: wg_netmanager.mesh.mesh_info
  - module: wg_netmanager.mesh.leaf_key
notes:
  - Does not resolve host names and opens no connection.
"""

EXAMPLES = r"""
- name: Check the mesh described by the inventory group "mesh"
  wg_netmanager.mesh.mesh_validate:
    subnet: "{{ wg_subnet }}"
    nodes: >-
      {%- set nodes = [] -%}
      {%- for h in groups['mesh'] -%}
      {%-   set v = hostvars[h] -%}
      {%-   set _ = nodes.append({'host': h, 'name': v.wg_name | default(h),
              'wg_ip': v.wg_ip | default(none),
              'static_endpoint': v.wg_static_endpoint | default(none),
              'admin_port': v.wg_admin_port | default(none)}) -%}
      {%- endfor -%}
      {{ nodes }}
  delegate_to: localhost
  run_once: true

- name: Check an explicit list of nodes and keep the static peers for net.yaml
  wg_netmanager.mesh.mesh_validate:
    subnet: 10.1.1.0/24
    nodes:
      - host: alpha
        wg_ip: 10.1.1.1
      - host: beta
        wg_ip: 10.1.1.2
        static_endpoint: beta.example.org:50000
  delegate_to: localhost
  run_once: true
  register: mesh

- name: Show the peers mapping of net.yaml
  ansible.builtin.debug:
    var: mesh.static_peers
"""

RETURN = r"""
static_peers:
  description:
    - The C(peers) mapping of C(net.yaml) - static nodes by name.
  returned: success
  type: dict
  sample:
    beta:
      endPoint: beta.example.org:50000
      adminPort: 50001
      wgIp: 10.1.1.2
nodes:
  description: The nodes, normalised, in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    host:
      description: The inventory host.
      type: str
      returned: always
    name:
      description: The node name (defaults to the host).
      type: str
      returned: always
    wg_ip:
      description: The node's mesh address.
      type: str
      returned: always
    static_endpoint:
      description: C(host:port) for static nodes, V(null) for the others.
      type: str
      returned: always
    admin_port:
      description: The admin port; for static nodes the default is filled in.
      type: int
      returned: always
    interface:
      description: The WireGuard interface name.
      type: str
      returned: always
    static:
      description: Whether the node has a static endpoint.
      type: bool
      returned: always
    subnets:
      description: The LAN subnets it routes into the mesh.
      type: list
      elements: str
      returned: always
    exit_node:
      description: Whether the node offers the mesh its internet access.
      type: bool
      returned: always
    use_exit_node:
      description: The exit node whose internet access it uses, or null.
      type: str
      returned: always
    mode:
      description: V(normal), or V(mobile) for a data-limited node.
      type: str
      returned: always
  sample:
    - host: alpha
      name: alpha
      wg_ip: 10.1.1.1
      static_endpoint: null
      admin_port: null
      interface: wg0
      static: false
      subnets: []
      exit_node: false
      use_exit_node: null
      mode: normal
leaves:
  description: The leaves, normalised, in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    host:
      description: The inventory host.
      type: str
      returned: always
    name:
      description: The leaf's name (defaults to the host).
      type: str
      returned: always
    wg_ip:
      description: The leaf's mesh address.
      type: str
      returned: always
    address:
      description: The address with the subnet's prefix, for the leaf's C([Interface] Address).
      type: str
      returned: always
    home_host:
      description: The inventory host of its home node.
      type: str
      returned: always
    home:
      description: Its home node's name (net.yaml C(leaves.<name>.home)).
      type: str
      returned: always
    endpoint:
      description: Its home node's static endpoint.
      type: str
      returned: always
    allowed_ips:
      description: What it routes into the tunnel.
      type: list
      elements: str
      returned: always
    dns:
      description: Its resolvers and search domains.
      type: list
      elements: str
      returned: always
    keepalive:
      description: Its keepalive interval in seconds (V(0) for none).
      type: int
      returned: always
  sample:
    - host: phone
      name: phone
      wg_ip: 10.1.1.50
      address: 10.1.1.50/24
      home_host: beta
      home: beta
      endpoint: beta.example.org:50000
      allowed_ips: [10.1.1.0/24]
      dns: []
      keepalive: 25
problems:
  description: Every problem found, one line each, naming the host and the variable.
  returned: failure
  type: list
  elements: str
  sample:
    - "host charlie: wg_ip 10.9.9.9 is outside wg_subnet 10.1.1.0/24"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wg_netmanager.mesh.plugins.module_utils.leaves import validate_leaves
from ansible_collections.wg_netmanager.mesh.plugins.module_utils.mesh_validate import (
    validate_mesh,
)


def main() -> None:
    node_spec = {
        "host": {"type": "str", "required": True},
        "name": {"type": "str"},
        "wg_ip": {"type": "str"},
        "static_endpoint": {"type": "str"},
        "admin_port": {"type": "raw"},
        "interface": {"type": "str", "default": "wg0"},
        "subnets": {"type": "list", "elements": "str", "default": []},
        "exit_node": {"type": "bool", "default": False},
        "use_exit_node": {"type": "str"},
        "mode": {"type": "str", "choices": ["normal", "mobile"], "default": "normal"},
    }
    leaf_spec = {
        "host": {"type": "str", "required": True},
        "name": {"type": "str"},
        "wg_ip": {"type": "str"},
        "home": {"type": "str"},
        "allowed_ips": {"type": "list", "elements": "str"},
        "dns": {"type": "list", "elements": "str"},
        "keepalive": {"type": "raw"},
    }
    module = AnsibleModule(
        argument_spec={
            "subnet": {"type": "str", "required": True},
            "nodes": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": node_spec,
            },
            "leaves": {"type": "list", "elements": "dict", "default": [], "options": leaf_spec},
            "ca": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    result = validate_mesh(module.params["subnet"], module.params["nodes"], module.params["ca"])
    leaves = validate_leaves(module.params["subnet"], result["nodes"], module.params["leaves"])
    problems = result["problems"] + leaves["problems"]
    if problems:
        module.fail_json(
            msg=f"{len(problems)} problem(s) in the mesh inventory: " + "; ".join(problems),
            problems=problems,
        )
    module.exit_json(
        changed=False, static_peers=result["static_peers"], nodes=result["nodes"], leaves=leaves["leaves"]
    )


if __name__ == "__main__":
    main()
