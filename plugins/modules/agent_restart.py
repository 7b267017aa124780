#!/usr/bin/python
# ruff: noqa: E402, EXE001  (Ansible: docs before imports; shebang on a non-executable module)
# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r"""
---
module: agent_restart
short_description: Restart the wg_netmanager agent and wait until it is back
version_added: 0.1.0
description:
  - Notes how many peers the running agent reaches, runs the commands that restart it (in
    order; each must succeed), then waits until the agent answers on its status socket
    again, every static node it is configured with answers it, and it reaches at least as
    many peers as before.
  - With C(throttle) on the task, hosts restart one after the other, each only once the one
    before is back. The agent role restarts static nodes that way, so a mesh never loses more
    than one static node at a time, and a static node that does not come back stops the roll.
author:
  - wg_netmanager contributors (@wg-netmanager)
attributes:
  check_mode:
    support: full
    description: Restarts nothing in check mode and reports that it would.
  diff_mode:
    support: none
    description: Nothing to diff.
options:
  commands:
    description:
      - The commands that restart the agent, each an argument list, run in order (for
        example C([[systemctl, restart, wg_netmanager]]), or a stop and a start).
    type: list
    elements: list
    required: true
  interface:
    description: The WireGuard interface the agent manages; selects its status socket.
    type: str
    default: wg0
  socket:
    description: Path of the status socket, overriding the one derived from O(interface).
    type: path
  timeout:
    description:
      - Seconds to wait for the agent to be back; then the task fails.
      - V(0) runs the commands and does not wait (the agent is not expected to answer, for
        example a host whose service only starts later).
    type: float
    default: 60.0
seealso:
  - module: wg_netmanager.mesh.mesh_info
notes:
  - The socket is only accessible to root (mode 0600), so use C(become=true).
"""

EXAMPLES = r"""
- name: Restart the static nodes one at a time
  wg_netmanager.mesh.agent_restart:
    commands: [[systemctl, restart, wg_netmanager]]
  throttle: 1
  become: true
"""

RETURN = r"""
peers_before:
  description: Peers the agent reached before the restart (0 when it was not running).
  returned: success
  type: int
peers_after:
  description: Peers it reaches now (0 when O(timeout=0)).
  returned: success
  type: int
waited:
  description: Seconds from the restart until the agent was back.
  returned: success
  type: float
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wg_netmanager.mesh.plugins.module_utils.mesh_status import (
    StatusError,
    reached,
    read_status,
    socket_path,
    wait_ready,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "commands": {"type": "list", "elements": "list", "required": True},
            "interface": {"type": "str", "default": "wg0"},
            "socket": {"type": "path"},
            "timeout": {"type": "float", "default": 60.0},
        },
        supports_check_mode=True,
    )
    path = module.params["socket"] or socket_path(module.params["interface"])
    try:
        before = reached(read_status(path))
    except StatusError:
        before = 0  # not running (or not answering): back once it answers
    if module.check_mode:
        module.exit_json(changed=True, peers_before=before, peers_after=before, waited=0.0)
    for argv in module.params["commands"]:
        rc, out, err = module.run_command([str(a) for a in argv])
        if rc != 0:
            module.fail_json(msg=f"{' '.join(map(str, argv))} failed (status {rc}): {(err or out).strip()}")
    if module.params["timeout"] <= 0:
        module.exit_json(changed=True, peers_before=before, peers_after=0, waited=0.0)
    why, waited = wait_ready(path, before, module.params["timeout"])
    if why is not None:
        module.fail_json(
            msg=f"the agent restarted but is not back after {waited:.0f} s: {why}",
            peers_before=before,
            waited=waited,
        )
    try:
        after = reached(read_status(path))
    except StatusError:
        after = 0  # gone again right after it was back: the health role tells
    module.exit_json(changed=True, peers_before=before, peers_after=after, waited=round(waited, 2))


if __name__ == "__main__":
    main()
