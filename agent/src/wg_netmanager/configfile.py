"""Reading the configuration files: YAML that rejects duplicate keys, and errors that never
quote the file (a snippet could show the shared key). Parsing is `core.config`'s.

The original wg_netmanager read /etc/wg_netmanager/network.yaml and, when it exists,
/etc/wg_netmanager/peer.yaml without being told; `default_net_file` and `default_peer_file`
keep those habits.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml

from .core.config import DEFAULT_NET_FILE, ConfigError, NetConfig, PeerFile, parse_net, parse_peer_file

log = logging.getLogger(__name__)

ORIGINAL_NET_FILE = Path("/etc/wg_netmanager/network.yaml")
DEFAULT_PEER_FILE = Path("/etc/wg_netmanager/peer.yaml")


def default_net_file(etc: Path = DEFAULT_NET_FILE.parent) -> Path:
    """net.yaml, or the original tool's network.yaml when only that one exists."""
    ours, original = etc / DEFAULT_NET_FILE.name, etc / ORIGINAL_NET_FILE.name
    return original if not ours.exists() and original.exists() else ours


def default_peer_file(etc: Path = DEFAULT_PEER_FILE.parent) -> Path | None:
    """peer.yaml when it exists (read without -p, as the original did), else None."""
    path = etc / DEFAULT_PEER_FILE.name
    return path if path.exists() else None


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice (PyYAML silently keeps the last one)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key: construct_mapping reports it
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_yaml(path: Path) -> Any:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(file, "(file)", f"cannot read: {reason}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        # Only problem and position: the error's snippet could quote the shared key line.
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        raise ConfigError(file, where, f"not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, "(document)", f"not valid YAML: {type(exc).__name__}") from None


def load_net(path: Path) -> NetConfig:
    data = load_yaml(path)
    net = parse_net(data, str(path))
    try:
        if os.stat(path).st_mode & 0o077:
            log.warning("%s is readable by other users but holds the shared key: chmod 600 it", path)
    except OSError:
        pass
    return net


def load_peer_file(path: Path) -> PeerFile:
    return parse_peer_file(load_yaml(path), str(path))
