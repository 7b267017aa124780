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
from .fsutil import read_small_text

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


# network.sharedKeyFile / previousSharedKeyFile: the key alone in a file of its own (0600),
# so that net.yaml itself holds no secret (the collection writes it so; --diff can show it).
KEY_FILE_FIELDS = ("sharedKeyFile", "previousSharedKeyFile")
MAX_KEY_FILE = 1024  # bytes: a key is 45


def load_net(path: Path) -> NetConfig:
    """net.yaml, with the key files it names read (again on every call: SIGHUP reloads them)."""
    data = load_yaml(path)
    net = parse_net(data, str(path), _read_key_files(data, Path(path)))
    network = data.get("network") if isinstance(data, dict) else None
    inline = isinstance(network, dict) and any(k in network for k in ("sharedKey", "previousSharedKey"))
    try:
        if inline and os.stat(path).st_mode & 0o077:
            log.warning("%s is readable by other users but holds the shared key: chmod 600 it", path)
    except OSError:
        pass
    return net


def _read_key_files(data: Any, net_file: Path) -> dict[str, tuple[str, str]]:
    """Field -> (path, text) for each key file net.yaml names; a relative path is taken
    from net.yaml's directory. Unlike net.yaml (warned about), a key file others can read
    is refused, as a CA key is: the file has one purpose, and that is the secret."""
    network = data.get("network") if isinstance(data, dict) else None
    if not isinstance(network, dict):
        return {}  # parse_net names the mistake
    found = {}
    for fld in KEY_FILE_FIELDS:
        value = network.get(fld)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(str(net_file), f"network.{fld}", "must be the path of a key file")
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = net_file.parent / path
        found[fld] = (str(path), _read_key_file(path, net_file, fld))
    return found


def _read_key_file(path: Path, net_file: Path, fld: str) -> str:
    def private(mode: int) -> None:
        if mode & 0o077:
            raise ConfigError(
                str(path), "(file)", f"mode {mode:04o} lets others read the shared key; chmod 600 it"
            )

    text, _ = read_small_text(
        path,
        MAX_KEY_FILE,
        "not a shared key",
        "not base64 text (create one with: wg_netmanager genkey)",
        private,
        f"named by {net_file} network.{fld}",
    )
    return text


def load_peer_file(path: Path) -> PeerFile:
    return parse_peer_file(load_yaml(path), str(path))
