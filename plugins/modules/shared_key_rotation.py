#!/usr/bin/python
# ruff: noqa: EXE001  (Ansible: shebang on a non-executable module)
# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

# The work is done by the action plugin of the same name (plugins/action/); this file only
# documents it.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: shared_key_rotation
short_description: Start or finish a rotation of a wg_netmanager network's shared key
version_added: 0.1.0
description:
  - Keeps the state of a shared-key rotation on the controller, beside the key file that the
    P(wg_netmanager.mesh.shared_key#lookup) lookup reads. While a rotation is in progress,
    C(<path>.previous) holds the key being replaced; net.yaml then carries both keys
    (C(sharedKey) the new one, C(previousSharedKey) the old one), so nodes that have the new
    key and nodes that still have only the old one keep talking.
  - O(state=started) starts a rotation unless one is in progress. It copies the key file to
    C(<path>.previous) byte for byte (a vault-encrypted file stays encrypted), then replaces
    the key file with a new key (base64 of 32 random bytes from the operating system),
    encrypted with the same vault secret and vault id if the old file was encrypted. Both
    files are written atomically with mode 0600. A start cut short between the two writes
    leaves C(<path>.previous) equal to the key file, which counts as no rotation; the next
    start completes it.
  - O(state=finished) ends a rotation by removing C(<path>.previous). Do this only when every
    node speaks the new key and no node hears the old one any more (C(playbooks/rotate.yml)
    checks that); a node that has only the old key is cut off afterwards.
  - Runs on the controller only. Never returns, logs or diffs a key.
author:
  - wg_netmanager contributors (@wg-netmanager)
attributes:
  action:
    support: full
    description: Implemented as an action plugin; runs on the controller.
  check_mode:
    support: full
    description: Says what a real run would do; writes and removes nothing.
  diff_mode:
    support: full
    description: Shows the rotation state before and after (never a key).
options:
  path:
    description:
      - The shared key file on the controller (C(wg_shared_key_file)). It must exist. A
        relative path is searched like the lookup searches it.
    type: path
    required: true
  state:
    description:
      - V(started) a rotation is in progress (start one unless one is); V(finished) none is
        (finish the one in progress, if any).
    type: str
    required: true
    choices: [started, finished]
notes:
  - C(playbooks/rotate.yml) runs both phases on a mesh, with the checks phase 2 needs.
seealso:
  - plugin: wg_netmanager.mesh.shared_key
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Start a rotation (a second run while it is in progress changes nothing)
  wg_netmanager.mesh.shared_key_rotation:
    path: "{{ wg_shared_key_file }}"
    state: started
  delegate_to: localhost
  run_once: true

- name: Finish it, once every node is on the new key
  wg_netmanager.mesh.shared_key_rotation:
    path: "{{ wg_shared_key_file }}"
    state: finished
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
rotating:
  description: Whether a rotation is in progress afterwards (in check mode, would be).
  returned: always
  type: bool
  sample: true
steps:
  description:
    - What was done (in check mode, what would be), in order; empty when nothing changed.
    - C(keep-previous) copied the key file to RV(previous_path), C(new-key) replaced the key
      file with a new key, C(drop-previous) removed RV(previous_path).
  returned: always
  type: list
  elements: str
  sample: [keep-previous, new-key]
path:
  description: The key file.
  returned: always
  type: str
  sample: /home/me/.config/wg_netmanager/mesh.key
previous_path:
  description: The file that holds the key being replaced while a rotation is in progress.
  returned: always
  type: str
  sample: /home/me/.config/wg_netmanager/mesh.key.previous
"""
