# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""Controller side of a shared-key rotation (documented in plugins/modules/shared_key_rotation.py).

An action plugin, not a module: the key file may be vault-encrypted, and only the controller's
loader holds the vault secrets. No key ever goes into the result, an error or a diff.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.parsing.vault import VaultLib, is_encrypted
from ansible.plugins.action import ActionBase
from ansible_collections.wg_netmanager.mesh.plugins.plugin_utils.shared_key import (
    SharedKeyError,
    check,
    generate,
    previous_path,
    replace,
    rotation_steps,
)

ARGUMENT_SPEC = {
    "path": {"type": "path", "required": True},
    "state": {"type": "str", "required": True, "choices": ["started", "finished"]},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # controller files only

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        path = self._resolve(args["path"])
        previous = previous_path(path)
        current_raw, current = self._read(path)
        previous_key = self._read(previous)[1] if os.path.exists(previous) else None
        steps = rotation_steps(current, previous_key, finish=args["state"] == "finished")
        rotating_before = previous_key is not None and previous_key != current
        rotating_after = args["state"] == "started"
        if steps and not self._task.check_mode:
            try:
                self._apply(steps, path, current_raw)
            except OSError as exc:
                raise AnsibleActionFail(f"shared key file {path}: {to_native(exc)}") from None
        result.update(
            changed=bool(steps),
            rotating=rotating_after if steps else rotating_before,
            steps=steps,
            path=path,
            previous_path=previous,
            msg=_message(steps, rotating_before, previous, self._task.check_mode),
        )
        if self._task.diff:
            result["diff"] = {
                "before_header": path,
                "after_header": path,
                "before": _describe(rotating_before, previous),
                "after": _describe(result["rotating"], previous),
            }
        return result

    def _resolve(self, term):
        """The key file as the shared_key lookup finds it (files search path, then as given
        relative to the playbook)."""
        try:
            return self._find_needle("files", term)
        except AnsibleError:
            term = os.path.expanduser(term)
            path = term if os.path.isabs(term) else self._loader.path_dwim(term)
        if not os.path.exists(path):
            raise AnsibleActionFail(
                f"shared key file {path} does not exist: a mesh gets its first key from"
                " playbooks/site.yml; there is nothing to rotate yet"
            )
        return path

    def _read(self, path):
        """(raw bytes as stored, the key in it), through the loader so vault works."""
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
            text = to_text(self._loader._get_file_contents(path)[0], errors="surrogate_or_strict")
            return raw, check(text, path)
        except SharedKeyError as exc:
            raise AnsibleActionFail(str(exc)) from None
        except (AnsibleError, OSError) as exc:  # vault errors too; never the content
            raise AnsibleActionFail(f"shared key file {path}: cannot read it: {to_native(exc)}") from None

    def _apply(self, steps, path, current_raw):
        for step in steps:
            if step == "keep-previous":
                replace(previous_path(path), current_raw)  # as stored: encrypted stays encrypted
            elif step == "new-key":
                replace(path, self._seal(generate() + "\n", current_raw, path))
            elif step == "drop-previous":
                os.unlink(previous_path(path))

    def _seal(self, text, like, path):
        """`text` as bytes; vault-encrypted with the secret and vault id that open `like`
        (the key file as it was) when that is encrypted."""
        data = text.encode("ascii")
        if not is_encrypted(like):
            return data
        vault = VaultLib(self._loader._vault.secrets)
        try:
            vault_id, secret = vault.decrypt_and_get_vault_id(like, filename=path)[1:]
            return vault.encrypt(data, secret=secret, vault_id=vault_id)
        except AnsibleError as exc:
            raise AnsibleActionFail(
                f"shared key file {path} is vault-encrypted, but the new key cannot be"
                f" encrypted the same way: {to_native(exc)}"
            ) from None


def _describe(rotating, previous):
    if rotating:
        return f"rotation: in progress (the key it replaces is kept in {previous})\n"
    return "rotation: none\n"


def _message(steps, rotating_before, previous, check_mode):
    would = "would " if check_mode else ""
    if "new-key" in steps:
        return f"{would}start a rotation: a new shared key, the current one kept in {previous}"
    if "drop-previous" in steps:
        return f"{would}finish the rotation: {previous} removed"
    if rotating_before:
        return f"a rotation is in progress (the key it replaces is in {previous})"
    return "no rotation in progress"
