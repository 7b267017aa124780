#!/usr/bin/python
# ruff: noqa: E402, EXE001  (Ansible: docs before imports; shebang on a non-executable module)
# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r"""
---
module: leaf_config
short_description: Write a leaf's wg-quick configuration and its QR code on the controller
version_added: 0.1.0
description:
  - A leaf is a WireGuard peer without the agent (a phone, a tablet, a router with wg-quick).
    From its private key (made by M(wg_netmanager.mesh.leaf_key)) this writes its wg-quick
    configuration O(dir)/O(name)C(.conf), with its home node as the one peer, and the QR code
    of exactly that text as O(dir)/O(name)C(.png), which the WireGuard apps import.
  - Both files hold the private key, so both are mode C(0600); each is written only when its
    content changes. The private key never leaves the module; still, give the task
    C(no_log=true).
  - Meant for C(delegate_to=localhost).
author:
  - wg_netmanager contributors (@wg-netmanager)
requirements:
  - cryptography (on the controller)
  - segno >= 1.5 (on the controller, for O(qr))
attributes:
  check_mode:
    support: full
    description: Reports whether a file would change, and writes nothing.
  diff_mode:
    support: none
    description: The files hold a secret.
options:
  dir:
    description: The controller directory of the leaves' files (as for M(wg_netmanager.mesh.leaf_key)).
    type: path
    required: true
  name:
    description: The leaf's name; names the files.
    type: str
    required: true
  address:
    description: The leaf's address with the prefix of the mesh's subnet (C([Interface] Address)).
    type: str
    required: true
  dns:
    description: Resolvers and search domains (C([Interface] DNS)); none by default.
    type: list
    elements: str
    default: []
  peer_public_key:
    description: The home node's WireGuard public key (C([Peer] PublicKey)).
    type: str
    required: true
  endpoint:
    description: The home node's C(host:port), its C(wg_static_endpoint) (C([Peer] Endpoint)).
    type: str
    required: true
  allowed_ips:
    description: What the leaf routes into the tunnel (C([Peer] AllowedIPs)).
    type: list
    elements: str
    required: true
  keepalive:
    description: C([Peer] PersistentKeepalive) in seconds; V(0) leaves it out.
    type: int
    default: 25
  qr:
    description: Also write the QR code (PNG).
    type: bool
    default: true
seealso:
  - module: wg_netmanager.mesh.leaf_key
notes:
  - To show the QR code in a terminal instead, run on the controller C(python3 -c 'import segno, sys;
    segno.make_qr(open(sys.argv[1]).read()).terminal(compact=True)' DIR/NAME.conf); never print it
    through a task (it holds the private key).
"""

EXAMPLES = r"""
- name: Write the phone's configuration and QR code
  wg_netmanager.mesh.leaf_config:
    dir: /etc/ansible/mesh-leaves
    name: phone
    address: 10.1.1.50/24
    peer_public_key: "{{ lookup('ansible.builtin.file', '/etc/ansible/mesh-keys/beta.pub') }}"
    endpoint: beta.example.org:50000
    allowed_ips: [10.1.1.0/24]
    dns: [10.1.1.2]
  delegate_to: localhost
  no_log: true
"""

RETURN = r"""
public_key:
  description: The leaf's WireGuard public key; V(null) in check mode while there is no key yet.
  returned: success
  type: str
  sample: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
config_file:
  description: The wg-quick configuration's file.
  returned: success
  type: str
  sample: /etc/ansible/mesh-leaves/phone.conf
qr_file:
  description: The QR code's PNG; V(null) without O(qr).
  returned: success
  type: str
  sample: /etc/ansible/mesh-leaves/phone.png
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.wg_netmanager.mesh.plugins.module_utils import leaf_files


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dir": {"type": "path", "required": True},
            "name": {"type": "str", "required": True},
            "address": {"type": "str", "required": True},
            "dns": {"type": "list", "elements": "str", "default": []},
            "peer_public_key": {"type": "str", "required": True},
            "endpoint": {"type": "str", "required": True},
            "allowed_ips": {"type": "list", "elements": "str", "required": True},
            "keepalive": {"type": "int", "default": 25},
            "qr": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not leaf_files.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"))
    if p["qr"] and not leaf_files.HAS_SEGNO:
        module.fail_json(msg=missing_required_lib("segno", reason="for the QR code (or set qr=false)"))
    settings = {
        k: p[k] for k in ("address", "dns", "peer_public_key", "endpoint", "allowed_ips", "keepalive", "qr")
    }
    try:
        result = leaf_files.ensure_config(p["dir"], p["name"], module.check_mode, **settings)
    except (leaf_files.LeafFileError, OSError) as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc() if isinstance(exc, OSError) else None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
