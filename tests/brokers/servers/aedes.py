"""`AedesServer`: an aedes 1.x broker (npm) in a node process (MQTT 3.1.1 only).

``aedes_broker.js`` beside this file is the whole broker; aedes itself comes from
``.brokers/node_modules`` (installed by ``tools/install_brokers.sh``). By hand: see docs/brokers.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from ._base import BrokerNotInstalledError, BrokerServer, find_program
from ._cache import CACHE_DIR

__all__ = ["AedesServer", "aedes_version"]

_SCRIPT = Path(__file__).with_name("aedes_broker.js")
_MODULES = CACHE_DIR / "node_modules"


def aedes_version() -> str:
    """The installed aedes version, e.g. ``1.2.0``; `BrokerNotInstalledError` if it is missing."""
    manifest = _MODULES / "aedes" / "package.json"
    if not manifest.is_file():
        raise BrokerNotInstalledError(f"aedes is not installed in {_MODULES}: run tools/install_brokers.sh")
    version: str = json.loads(manifest.read_text())["version"]
    return version


class AedesServer(BrokerServer):
    """aedes on 127.0.0.1:`port`, with in-memory persistence (retained state is lost on restart)."""

    name = "aedes"

    def __init__(self) -> None:
        aedes_version()
        super().__init__()
        self._node = find_program("node")

    def _command(self) -> list[str]:
        return [self._node, str(_SCRIPT), str(self.port), str(_MODULES)]
