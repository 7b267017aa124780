#!/usr/bin/python
# ruff: noqa: E402, EXE001  (Ansible: docs before imports; shebang on a non-executable module)
# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_cert
short_description: Sign, renew or keep a node's certificate of a wg_netmanager network CA
version_added: 0.1.0
description:
  - Keeps the certificate of one mesh node in the CA directory on the controller,
    C(<ca_dir>/issued/<host>.crt), and returns it for deployment to the node.
  - Signs a new certificate (with the agent's C(wg_netmanager cert sign)) when the host has
    none, when its certificate does not verify against C(<ca_dir>/ca.pub) now, when its
    serial is revoked, when it binds another name, address, public key or set of subnets
    than the options say, or when it expires within O(renew_days) days. Otherwise changes
    nothing.
  - A certificate replaced because the node's name, address, key or subnets changed is
    revoked (added to C(<ca_dir>/revoked.json)) before it is replaced, since it still
    verifies and whoever holds its key could go on using it. One replaced only because it
    expires soon is not.
  - Runs on the controller, meant for C(delegate_to=localhost) and C(become=false), once per
    host (hosts can run in parallel).
author:
  - wg_netmanager contributors (@wg-netmanager)
attributes:
  check_mode:
    support: full
    description: Reports whether and why the certificate would be signed, and writes nothing.
  diff_mode:
    support: full
    description: Shows the certificate's fields before and after (name, address, key, subnets, serial,
      expiry).
options:
  ca_dir:
    description:
      - The CA directory made by C(wg_netmanager ca init) (C(ca.pub); C(ca.key) only when a
        certificate must be signed).
    type: path
    required: true
  host:
    description:
      - The inventory host; names the certificate file C(issued/<host>.crt).
    type: str
    required: true
  name:
    description: The node's name in the mesh.
    type: str
    required: true
  wg_ip:
    description: The node's address in the mesh.
    type: str
    required: true
  public_key:
    description:
      - The node's WireGuard public key (C(wg_netmanager pubkey) on the node prints it).
      - Omit it when the node has no key yet; allowed in check mode only (the real run makes
        the key on the node first).
    type: str
  subnets:
    description: Networks (CIDR, no host bits) the node may route into the mesh.
    type: list
    elements: str
    default: []
  days:
    description: Validity of a new certificate in days.
    type: int
    default: 365
  renew_days:
    description: Sign a new certificate when the current one expires within this many days; less than O(days).
    type: int
    default: 30
  agent_command:
    description:
      - The agent's command line on the controller, as a list (for example
        V([/usr/bin/python3, -m, wg_netmanager]) with C(PYTHONPATH) pointing at the agent's
        sources, as the agent role does).
    type: list
    elements: str
    default: [wg_netmanager]
notes:
  - The CA key stays in its file; only the agent's command line reads it, so it never appears
    in arguments, results or logs. It cannot be ansible-vault encrypted for that reason; keep
    C(ca_dir) in a directory only you can read, or keep C(ca.key) elsewhere and bring it back
    for runs that sign (the module says when it needs it).
seealso:
  - module: wg_netmanager.mesh.ca_revocations
"""

EXAMPLES = r"""
- name: Sign or renew the node's certificate on the controller
  wg_netmanager.mesh.node_cert:
    ca_dir: "{{ inventory_dir }}/mesh-ca"
    host: "{{ inventory_hostname }}"
    name: "{{ wg_name }}"
    wg_ip: "{{ wg_ip }}"
    public_key: "{{ node_key.stdout }}"
  delegate_to: localhost
  become: false
  register: node_cert

- name: Put the certificate on the node
  ansible.builtin.copy:
    content: "{{ node_cert.cert }}"
    dest: /etc/wg_netmanager/node.crt
    mode: "0644"
  when: node_cert.cert is not none
"""

RETURN = r"""
cert:
  description:
    - The node's certificate file (PEM-like text), as it is now in C(issued/<host>.crt).
    - V(null) in check mode when a new one would be signed.
  returned: always
  type: str
serial:
  description: The certificate's serial (16 hex digits), V(null) when there is none yet.
  returned: always
  type: str
  sample: 9a915dface7bb0fa
not_after:
  description: Its expiry, unix seconds (V(null) when there is none yet).
  returned: always
  type: int
reasons:
  description: Why a new certificate was (in check mode, would be) signed; empty when the current one is kept.
  returned: always
  type: list
  elements: str
  sample: ["public key AAAA...= -> BBBB...=", "expires in 12 days (renewed within 30)"]
revoked:
  description: The revocation list entry of the certificate this one replaced, when that one is revoked.
  returned: always
  type: dict
  sample:
    serial: 9a915dface7bb0fa
    host: alpha
    name: alpha
    wgIp: 10.1.1.1
    notAfter: 1797027272
    revokedAt: "2026-12-01 22:14:32 UTC"
    reason: "superseded: public key AAAA...= -> BBBB...="
path:
  description: The controller's copy of the certificate.
  returned: always
  type: str
  sample: /home/me/.config/wg_netmanager/mesh-ca/issued/alpha.crt
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wg_netmanager.mesh.plugins.module_utils.ca_store import CaStore, CaStoreError
from ansible_collections.wg_netmanager.mesh.plugins.module_utils.node_cert import (
    CertPlanError,
    describe,
    desired_cert,
    renewal_reasons,
    revocation,
    serials_in_force,
    supersedes,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "ca_dir": {"type": "path", "required": True},
            "host": {"type": "str", "required": True},
            "name": {"type": "str", "required": True},
            "wg_ip": {"type": "str", "required": True},
            "public_key": {"type": "str"},
            "subnets": {"type": "list", "elements": "str", "default": []},
            "days": {"type": "int", "default": 365},
            "renew_days": {"type": "int", "default": 30},
            "agent_command": {"type": "list", "elements": "str", "default": ["wg_netmanager"]},
        },
        supports_check_mode=True,
    )
    p = module.params
    now = int(time.time())
    if not 0 <= p["renew_days"] < p["days"]:
        module.fail_json(
            msg=f"renew_days ({p['renew_days']}) must be at least 0 and less than days ({p['days']}),"
            " or every run would sign again"
        )
    store = CaStore(p["ca_dir"], p["agent_command"], module.run_command)
    try:
        desired = desired_cert(p["name"], p["wg_ip"], p["public_key"], p["subnets"])
        store.check_ready()
        path = store.issued(p["host"])
        current = store.show(path)
        revoked = serials_in_force(store.read_revoked())
    except (CertPlanError, CaStoreError) as exc:
        module.fail_json(msg=f"{p['host']}: {exc}")

    reasons = renewal_reasons(current, desired, revoked, now, p["renew_days"])
    result = {"changed": bool(reasons), "reasons": reasons, "path": path, "revoked": None}
    if not reasons:
        module.exit_json(
            cert=store.read_text(path),
            serial=current["serial"],
            not_after=current["notAfter"],
            diff={"before": describe(current), "after": describe(current)},
            **result,
        )

    if supersedes(current, desired):
        result["revoked"] = revocation(current, p["host"], "superseded: " + "; ".join(reasons), now)
    planned = dict(desired, notAfter=now + p["days"] * 86400)
    if module.check_mode:
        module.exit_json(
            cert=None,
            serial=None,
            not_after=None,
            diff={"before": describe(current), "after": describe(planned)},
            **result,
        )
    if desired["publicKey"] is None:
        module.fail_json(msg=f"{p['host']}: no public key given: the node's key is needed to sign", **result)

    def record_revocation() -> None:
        if result["revoked"]:
            store.update_revoked([result["revoked"]], now)

    try:
        text, fields = store.issue(p["host"], desired, p["days"], before_replace=record_revocation)
    except (CaStoreError, OSError) as exc:
        module.fail_json(msg=f"{p['host']}: {exc}", **result)
    module.exit_json(
        cert=text,
        serial=fields["serial"],
        not_after=fields["notAfter"],
        diff={"before": describe(current), "after": describe(fields)},
        **result,
    )


if __name__ == "__main__":
    main()
