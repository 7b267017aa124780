#!/usr/bin/python
# ruff: noqa: E402, EXE001  (Ansible: docs before imports; shebang on a non-executable module)
# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ca_revocations
short_description: Revoke the certificates of hosts taken out of a wg_netmanager mesh
version_added: 0.1.0
description:
  - Keeps the revocation list of a wg_netmanager network CA, C(<ca_dir>/revoked.json), and
    returns the serials for net.yaml's C(network.revokedCerts).
  - A host with a certificate in C(<ca_dir>/issued/) that is not among O(members) has been
    taken out of the mesh; its certificate's serial is revoked and the file moved to
    C(<ca_dir>/revoked/<host>-<serial>.crt), so that the host, added again later, gets a new
    certificate.
  - Entries are dropped a day after their certificate expires (a node refuses an expired
    certificate anyway, and a lagging clock gets a day's margin), so the list stays short.
  - Runs on the controller once for the whole mesh (C(delegate_to=localhost),
    C(run_once=true), C(become=false)), after M(wg_netmanager.mesh.node_cert) ran for every
    host of the play.
author:
  - wg_netmanager contributors (@wg-netmanager)
attributes:
  check_mode:
    support: full
    description: Returns the list a real run would make, writes and moves nothing.
  diff_mode:
    support: full
    description: Shows the revocation list before and after, one serial per line.
options:
  ca_dir:
    description: The CA directory (see M(wg_netmanager.mesh.node_cert)).
    type: path
    required: true
  members:
    description:
      - Every inventory host of the mesh (the whole group, not only the hosts of this run,
        so that C(--limit) revokes nothing).
    type: list
    elements: str
    required: true
  pending:
    description:
      - Revocation list entries M(wg_netmanager.mesh.node_cert) returned in this run (its
        RV(wg_netmanager.mesh.node_cert#module:revoked)). A real run has recorded them
        already; in check mode they show what the real run will list.
    type: list
    elements: dict
    default: []
  agent_command:
    description: The agent's command line on the controller (see M(wg_netmanager.mesh.node_cert)).
    type: list
    elements: str
    default: [wg_netmanager]
seealso:
  - module: wg_netmanager.mesh.node_cert
"""

EXAMPLES = r"""
- name: Revoke the certificates of hosts no longer in wg_mesh
  wg_netmanager.mesh.ca_revocations:
    ca_dir: "{{ inventory_dir }}/mesh-ca"
    members: "{{ groups['wg_mesh'] }}"
    pending: "{{ ansible_play_hosts | map('extract', hostvars, ['node_cert', 'revoked']) | select | list }}"
  delegate_to: localhost
  become: false
  run_once: true
  register: revocations

- name: Show what net.yaml lists
  ansible.builtin.debug:
    var: revocations.serials
"""

RETURN = r"""
serials:
  description: Every revoked serial still in force, sorted (net.yaml's C(network.revokedCerts)).
  returned: always
  type: list
  elements: str
  sample: ["0a3c9d2e11f04b7e", "9a915dface7bb0fa"]
added:
  description: The entries this run revoked (hosts taken out, and O(pending) not yet listed).
  returned: always
  type: list
  elements: dict
dropped:
  description: The entries dropped because their certificates have expired.
  returned: always
  type: list
  elements: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wg_netmanager.mesh.plugins.module_utils.ca_store import CaStore, CaStoreError
from ansible_collections.wg_netmanager.mesh.plugins.module_utils.node_cert import (
    describe_revoked,
    revocation,
    serials_in_force,
)

REMOVED = "host no longer in the inventory group"


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "ca_dir": {"type": "path", "required": True},
            "members": {"type": "list", "elements": "str", "required": True},
            "pending": {"type": "list", "elements": "dict", "default": []},
            "agent_command": {"type": "list", "elements": "str", "default": ["wg_netmanager"]},
        },
        supports_check_mode=True,
    )
    p = module.params
    now = int(time.time())
    store = CaStore(p["ca_dir"], p["agent_command"], module.run_command)
    members = set(p["members"])
    try:
        removed = []
        for host in store.issued_hosts():
            if host in members:
                continue
            cert = store.show(store.issued(host), verify=False)
            if not cert or cert.get("serial") is None:
                module.fail_json(
                    msg=f"{store.issued(host)}: host {host} left the mesh, but its certificate cannot be"
                    f" read to revoke it ({(cert or {}).get('status')}); revoke it by hand"
                    f" (revoked.json) and remove the file"
                )
            removed.append((host, revocation(cert, host, REMOVED, now)))
        new = [entry for _host, entry in removed] + list(p["pending"])
        before, after, added, dropped = store.update_revoked(new, now, write=not module.check_mode)
        if not module.check_mode:
            for host, entry in removed:
                store.retire(host, entry["serial"])
    except (CaStoreError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(
        changed=bool(added or dropped or removed),
        serials=serials_in_force(after),
        added=added,
        dropped=dropped,
        diff={"before": describe_revoked(before), "after": describe_revoked(after)},
    )


if __name__ == "__main__":
    main()
