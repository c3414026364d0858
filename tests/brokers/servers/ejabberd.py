"""`EjabberdServer`: a private ejabberd node that speaks only MQTT (``mod_mqtt``, MQTT 5 and 3.1.1).

The Erlang VM is started directly (``erl -s ejabberd``, as ``ejabberdctl foreground`` would, without its
switch to the ``ejabberd`` user) with a private config holding one ``mod_mqtt`` listener on a free
loopback port, a private spool (Mnesia) dir, node name, epmd and cookie. MQTT clients log in anonymously
(``login_anon``: any username with a non-empty password; none at all is refused).
By hand: see docs/brokers.md.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from ._base import PACKET_LIMIT, BrokerServer, find_program, free_port
from ._erlang import ErlangRuntime

__all__ = ["EjabberdServer", "ejabberd_version"]

_LIBS = Path("/usr/lib/x86_64-linux-gnu")


def _lib_dir() -> Path:
    for candidate in sorted(_LIBS.glob("ejabberd-*")):
        if (candidate / "ebin").is_dir():
            return candidate
    found = sorted(Path("/usr/lib").glob("*/ejabberd-*/ebin"))
    if found:
        return found[0].parent
    return _LIBS / "ejabberd-missing"


def ejabberd_version() -> str:
    """The installed ejabberd version, e.g. ``23.01``."""
    return _lib_dir().name.removeprefix("ejabberd-")


class EjabberdServer(BrokerServer):
    """ejabberd with only ``mod_mqtt``, listening on 127.0.0.1:`port`. Starts in a few seconds."""

    name = "ejabberd"
    # mod_mqtt with anonymous auth (login_anon) accepts any username with a non-empty password, and
    # refuses a CONNECT without them (CONNACK "not authorized"): these are not secrets.
    username = "cascade"
    password = "anonymous"

    max_packet_size = PACKET_LIMIT
    """Bytes: the listener's ``max_payload_size`` (ejabberd closes with 0x95 "Packet too large" beyond
    it, but announces no Maximum Packet Size in its MQTT 5 CONNACK; checked with a plain paho client)."""

    def __init__(self) -> None:
        super().__init__()
        find_program("ejabberdctl")  # BrokerNotInstalledError when the package is missing
        self._erl = find_program("erl")
        self.runtime = ErlangRuntime(self.directory)
        self.node = f"cascade-ej-{secrets.token_hex(4)}@localhost"
        self.dist_port = free_port()
        self.spool = self.directory / "spool"
        self.spool.mkdir()
        self.config_path = self.directory / "ejabberd.yml"
        self.config_path.write_text(
            "\n".join(
                [
                    "hosts:",
                    "  - localhost",
                    "loglevel: info",
                    "log_rotate_count: 0",
                    "auth_method: [anonymous]",
                    "anonymous_protocol: login_anon",
                    "listen:",
                    "  -",
                    f"    port: {self.port}",
                    '    ip: "127.0.0.1"',
                    "    module: mod_mqtt",
                    "    backlog: 1000",
                    f"    max_payload_size: {self.max_packet_size}",
                    "modules:",
                    "  mod_mqtt: {}",
                ]
            )
            + "\n"
        )

    def _environment(self) -> dict[str, str]:
        env = super()._environment()
        env.update(self.runtime.environment())
        env.update(
            {
                "EJABBERD_CONFIG_PATH": str(self.config_path),
                "EJABBERD_LOG_PATH": str(self.directory / "ejabberd-node.log"),
                "EJABBERD_PID_PATH": str(self.directory / "ejabberd.pid"),
                "ERL_LIBS": str(_LIBS),
                "ERL_CRASH_DUMP": str(self.directory / "erl_crash.dump"),
                "ERL_CRASH_DUMP_BYTES": "0",
            }
        )
        return env

    def _command(self) -> list[str]:
        return [
            self._erl,
            "-sname",
            self.node,
            "-noinput",
            "-noshell",
            "+K",
            "true",
            "-kernel",
            "inet_dist_use_interface",
            "{127,0,0,1}",
            "inet_dist_listen_min",
            str(self.dist_port),
            "inet_dist_listen_max",
            str(self.dist_port),
            "-mnesia",
            "dir",
            f'"{self.spool}"',
            "-s",
            "ejabberd",
        ]

    def _before_start(self) -> None:
        self.runtime.start_epmd()

    def _after_close(self) -> None:
        self.runtime.stop_epmd()

    def log_text(self) -> str:
        """The VM's output followed by ejabberd's own log."""
        text = super().log_text()
        try:
            return text + (self.directory / "ejabberd-node.log").read_text(errors="replace")
        except OSError:
            return text
