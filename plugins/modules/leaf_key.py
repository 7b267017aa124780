#!/usr/bin/python
# ruff: noqa: E402, EXE001  (Ansible: docs before imports; shebang on a non-executable module)
# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r"""
---
module: leaf_key
short_description: Make a leaf's WireGuard private key once, on the controller
version_added: 0.1.0
description:
  - A leaf is a WireGuard peer without the agent (a phone, a tablet, a router with wg-quick),
    a host of the inventory group C(wg_leaves). Its private key is made on the controller and
    kept there, so that its configuration (M(wg_netmanager.mesh.leaf_config)) can be given to
    the device.
  - Makes O(dir)/O(name)C(.key) (mode C(0600), the directory C(0700)) when it is missing and
    returns the public key. An existing key is kept; a run that finds it changes nothing but
    a wrong mode.
  - The private key never leaves the module; still, give the task C(no_log=true).
  - Meant for C(delegate_to=localhost).
author:
  - wg_netmanager contributors (@wg-netmanager)
requirements:
  - cryptography (on the controller)
attributes:
  check_mode:
    support: full
    description: Reports that a key would be made, and writes nothing.
  diff_mode:
    support: none
    description: The file holds a secret.
options:
  dir:
    description:
      - The controller directory of the leaves' files (the collection's default is beside
        C(wg_shared_key_file), named after it with C(-leaves)).
    type: path
    required: true
  name:
    description: The leaf's name; names the file.
    type: str
    required: true
seealso:
  - module: wg_netmanager.mesh.leaf_config
"""

EXAMPLES = r"""
- name: Make the phone's key on the controller
  wg_netmanager.mesh.leaf_key:
    dir: /etc/ansible/mesh-leaves
    name: phone
  delegate_to: localhost
  no_log: true
  register: phone_key
"""

RETURN = r"""
public_key:
  description: The leaf's WireGuard public key; V(null) in check mode while there is no key yet.
  returned: success
  type: str
  sample: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
path:
  description: The private key's file.
  returned: success
  type: str
  sample: /etc/ansible/mesh-leaves/phone.key
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.wg_netmanager.mesh.plugins.module_utils import leaf_files


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dir": {"type": "path", "required": True},
            "name": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    if not leaf_files.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"))
    try:
        result = leaf_files.ensure_key(module.params["dir"], module.params["name"], module.check_mode)
    except (leaf_files.LeafFileError, OSError) as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc() if isinstance(exc, OSError) else None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
