# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
# ruff: noqa: E402  (Ansible: DOCUMENTATION comes before the imports)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: shared_key
short_description: Read, or create once, the shared key of a wg_netmanager network
version_added: 0.1.0
description:
  - Returns the network's shared key (base64 of 32 random bytes) stored in a file on the
    controller.
  - If the file does not exist, generates a key from the operating system's random source,
    writes it to the file with mode 0600 (creating missing directories with mode 0700) and
    returns it. Several hosts looking it up at the same time get the same key.
  - If the file exists it is read through Ansible's loader, so a file encrypted with
    C(ansible-vault encrypt) works transparently. The content must be base64 of 32 bytes;
    otherwise the lookup fails with a message naming the file (never the content).
author:
  - wg_netmanager contributors (@wg-netmanager)
options:
  _terms:
    description:
      - Path of the key file on the controller. Relative paths are relative to the playbook
        directory (or the role, as for other file lookups).
    required: true
    type: list
    elements: path
  create:
    description:
      - Create the file with a new key when it does not exist. With V(false) a missing file
        is an error.
    type: bool
    default: true
  previous:
    description:
      - Return the key being replaced by a rotation in progress instead, read from the file
        named like the key file with C(.previous) appended (see
        M(wg_netmanager.mesh.shared_key_rotation)), or an empty string when there is no
        rotation (that file missing, or holding the current key).
      - Never creates a file; a missing key file gives an empty string too.
    type: bool
    default: false
notes:
  - Lookups run on the controller, also in check mode. In check mode this lookup creates
    nothing; a missing file gives an empty string (with O(create)), and a real run makes
    the key.
  - The key is a secret. Use it only in tasks with C(no_log=true), and keep the file out of
    version control or encrypt it with ansible-vault.
seealso:
  - module: wg_netmanager.mesh.mesh_validate
  - module: wg_netmanager.mesh.shared_key_rotation
"""

EXAMPLES = r"""
- name: Put the shared key into net.yaml
  ansible.builtin.template:
    src: net.yaml.j2
    dest: /etc/wg_netmanager/net.yaml
    mode: "0600"
  vars:
    wg_shared_key: "{{ lookup('wg_netmanager.mesh.shared_key', inventory_dir ~ '/secrets/shared_key') }}"
  no_log: true

- name: During a rotation, the key being replaced ('' when none is)
  ansible.builtin.set_fact:
    wg_previous_key: "{{ lookup('wg_netmanager.mesh.shared_key', wg_shared_key_file, previous=true) }}"
  no_log: true

- name: Fail instead of creating a key when the file is missing
  ansible.builtin.set_fact:
    wg_shared_key: "{{ lookup('wg_netmanager.mesh.shared_key', '/etc/mesh/shared_key', create=false) }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description:
    - The shared key, base64 of 32 bytes, one per term (with O(previous), the previous key
      or an empty string).
  type: list
  elements: str
"""

import os

from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display
from ansible_collections.wg_netmanager.mesh.plugins.plugin_utils.shared_key import (
    SharedKeyError,
    check,
    create,
    effective_previous,
    generate,
    previous_path,
)

display = Display()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [self._key(term, variables) for term in terms]

    def _key(self, term, variables):
        path = self.find_file_in_search_path(variables, "files", term, ignore_missing=True)
        if self.get_option("previous"):
            if not path or not os.path.exists(previous_path(path)):
                return ""
            return effective_previous(self._read(path), self._read(previous_path(path)))
        if not path:
            if not self.get_option("create"):
                raise AnsibleLookupError(f"shared key file {term} does not exist")
            if (variables or {}).get("ansible_check_mode"):
                return ""  # a check run writes nothing; the real run makes the key
            path = self._new_path(term)
            try:
                if create(path, generate()):
                    display.warning(
                        f"shared_key: created a new shared key in {path}; keep it safe"
                        " (ansible-vault encrypt) and out of version control"
                    )
            except OSError as exc:
                raise AnsibleLookupError(
                    f"shared key file {path}: cannot create it: {to_native(exc)}"
                ) from None
        return self._read(path)

    def _read(self, path):
        try:
            data = self._loader._get_file_contents(path)[0]
            return check(to_text(data, errors="surrogate_or_strict"), path)
        except SharedKeyError as exc:
            raise AnsibleLookupError(str(exc)) from None
        except (AnsibleError, OSError) as exc:  # vault errors too; never the content
            raise AnsibleLookupError(f"shared key file {path}: cannot read it: {to_native(exc)}") from None

    def _new_path(self, term):
        """Where to create a missing file: as given if absolute, else next to the playbook."""
        term = os.path.expanduser(term)
        if os.path.isabs(term):
            return term
        return self._loader.path_dwim(term)
