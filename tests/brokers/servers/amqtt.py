"""`AmqttServer`: the amqtt broker (PyPI) from a venv of its own (MQTT 3.1.1 only).

``tools/install_brokers.sh`` creates ``.brokers/amqtt-venv``, so amqtt's dependencies never enter the
workspace environment. The broker runs ``amqtt -c <private YAML>`` with one TCP listener on a free
loopback port and anonymous access. By hand: see docs/brokers.md.
"""

from __future__ import annotations

import subprocess

from ._base import BrokerNotInstalledError, BrokerServer
from ._cache import CACHE_DIR

__all__ = ["AmqttServer", "amqtt_version"]

_VENV = CACHE_DIR / "amqtt-venv"


def amqtt_version() -> str:
    """The installed amqtt version, e.g. ``0.12.1``; `BrokerNotInstalledError` if it is missing."""
    python = _VENV / "bin" / "python"
    if not (_VENV / "bin" / "amqtt").is_file():
        raise BrokerNotInstalledError(f"amqtt is not installed in {_VENV}: run tools/install_brokers.sh")
    result = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('amqtt'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


class AmqttServer(BrokerServer):
    """amqtt on 127.0.0.1:`port`; retained messages live in memory."""

    name = "amqtt"

    def __init__(self) -> None:
        if not (_VENV / "bin" / "amqtt").is_file():
            raise BrokerNotInstalledError(f"amqtt is not installed in {_VENV}: run tools/install_brokers.sh")
        super().__init__()
        self.config_path = self.directory / "amqtt.yaml"
        self.config_path.write_text(
            "\n".join(
                [
                    "listeners:",
                    "  default:",
                    "    type: tcp",
                    f"    bind: {self.host}:{self.port}",
                    "timeout_disconnect_delay: 0",
                    "plugins:",
                    "  amqtt.plugins.authentication.AnonymousAuthPlugin:",
                    "    allow_anonymous: true",
                ]
            )
            + "\n"
        )

    def _command(self) -> list[str]:
        return [str(_VENV / "bin" / "amqtt"), "-c", str(self.config_path)]
