"""`RabbitMQServer`: a private RabbitMQ node with the ``rabbitmq_mqtt`` plugin (MQTT 3.1.1).

Runs the OS package's scripts from ``/usr/lib/rabbitmq/bin`` directly (the ``/usr/sbin`` wrappers switch
to the ``rabbitmq`` user) with every path pointed into a private directory: node name, AMQP and
distribution ports, epmd port and cookie are the node's own; nothing listens on a default port.
MQTT accepts anonymous clients (mapped to ``guest``, which may connect over loopback).
By hand: see docs/brokers.md.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from ._base import BrokerServer, BrokerStartError, find_program, free_port
from ._erlang import ErlangRuntime

__all__ = ["RabbitMQServer", "rabbitmq_version"]

_SCRIPTS = "/usr/lib/rabbitmq/bin"


def rabbitmq_version() -> str:
    """The installed RabbitMQ version (from the OS package), e.g. ``3.10.8``."""
    server = Path(find_program("rabbitmq-server", _SCRIPTS)).resolve()
    for parent in (server.parent.parent / "lib", Path("/usr/lib/rabbitmq/lib")):
        for entry in sorted(parent.glob("rabbitmq_server-*")) if parent.is_dir() else []:
            return entry.name.removeprefix("rabbitmq_server-")
    return "unknown"


class RabbitMQServer(BrokerServer):
    """One RabbitMQ node on 127.0.0.1 with MQTT on `port`.

    `runtime` shares epmd and the cookie with other nodes (a cluster); by default the node has its own.
    `node` is the Erlang node name (``cascade-<random>@localhost``). Start takes several seconds.
    """

    name = "rabbitmq"

    def __init__(self, *, runtime: ErlangRuntime | None = None, node: str | None = None) -> None:
        super().__init__()
        self._server = find_program("rabbitmq-server", _SCRIPTS)
        self._ctl = find_program("rabbitmqctl", _SCRIPTS)
        self._owns_runtime = runtime is None
        self.runtime = runtime if runtime is not None else ErlangRuntime(self.directory)
        self.node = node or f"cascade-{secrets.token_hex(4)}@localhost"
        self.amqp_port = free_port()
        # rabbitmqctl listens on the node's distribution port + 10000 ... + 10010 while it runs: keep that
        # range below 65535 and away from the listeners' range.
        self.dist_port = free_port(20000, 29999)
        self.config_path = self.directory / "rabbitmq.conf"
        self.config_path.write_text(
            "\n".join(
                [
                    f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}",
                    f"mqtt.listeners.tcp.default = 127.0.0.1:{self.port}",
                    "mqtt.allow_anonymous = true",
                    "mqtt.tcp_listen_options.nodelay = true",
                    "tcp_listen_options.nodelay = true",
                    "log.file.level = info",
                    "log.console = false",
                ]
            )
            + "\n"
        )
        (self.directory / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (self.directory / "rabbitmq-env.conf").write_text("")

    def _environment(self) -> dict[str, str]:
        env = super()._environment()
        env.update(self.runtime.environment())
        d = self.directory
        env.update(
            {
                "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
                "RABBITMQ_LOG_BASE": str(d / "log"),
                "RABBITMQ_CONFIG_FILE": str(self.config_path),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
                "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
                "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            }
        )
        return env

    def _command(self) -> list[str]:
        return [self._server]

    def _before_start(self) -> None:
        self.runtime.start_epmd()

    def _ready_ports(self) -> list[int]:
        # The MQTT listener starts before the AMQP one, and a node whose AMQP listener fails stops
        # booting: only both accepting means the node is up.
        return [self.amqp_port]

    def _after_close(self) -> None:
        if self._owns_runtime:
            self.runtime.stop_epmd()

    def ctl(self, *args: str, timeout: float = 120.0) -> str:
        """Run ``rabbitmqctl -n <node> ARGS`` against this node; its output, or `BrokerStartError`."""
        result = subprocess.run(
            [self._ctl, "-n", self.node, *args],
            env=self._environment(),
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerStartError(
                f"rabbitmqctl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )
        return result.stdout

    def log_text(self) -> str:
        """The node's own log (``log/<node>.log``) after the startup output."""
        text = super().log_text()
        node_log = self.directory / "log" / f"{self.node}.log"
        try:
            return text + node_log.read_text(errors="replace")
        except OSError:
            return text
