"""Test hosts made of network namespaces, with NAT routers (see lab/README.md).

from lab import Lab
with Lab.up("seed-basic", prefix="wgt1") as lab:
    lab.host("alpha").run(["ping", "-c1", "198.51.100.2"])
"""

from .control import Lab
from .host import Host
from .topology import Topology, TopologyError, load

__all__ = ["Host", "Lab", "Topology", "TopologyError", "load"]
