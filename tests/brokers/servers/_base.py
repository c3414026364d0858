"""`BrokerServer`: the shape every test broker shares (the same as `MosquittoServer`).

A broker process runs from a private directory under the system tmp dir, listens on free loopback ports
chosen at construction (kept across `restart()`), and is ready when it answers an MQTT 3.1.1 CONNECT with
CONNACK 0 (`wait_ready`, which polls by connecting; nothing sleeps a fixed time). Subclasses say how to
start the process (`_command`, `_environment`) and may add steps (Erlang nodes start their own epmd).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from cascade.connectors.protocol import ConnectorError

__all__ = [
    "PACKET_LIMIT",
    "BrokerNotInstalledError",
    "BrokerServer",
    "BrokerStartError",
    "RunningBroker",
    "accepts_tcp",
    "find_program",
    "free_port",
    "mqtt_connack",
]


PACKET_LIMIT = 1024 * 1024
"""Bytes: the packet limit the matrix gives a broker that has a setting for one (Mosquitto's
``max_packet_size``; ejabberd's ``max_payload_size``, a payload bound, so every packet up to it is
accepted). RabbitMQ 3.10, aedes and amqtt have none: for them the limit is nominal (the contract's
oversize test is their declared deviation)."""

_SEARCH = ("/usr/lib/erlang/bin", "/usr/sbin", "/usr/bin", "/usr/local/bin")

# Default ports of the brokers and tools of the matrix (MQTT, AMQP, epmd, Erlang distribution, XMPP,
# management, STOMP): never handed out, so nothing here ever looks like a system service.
_DEFAULT_PORTS = frozenset(
    {1883, 8883, 5671, 5672, 4369, 25672, 5222, 5223, 5269, 5280, 5443, 15672, 15674, 15675, 15692, 61613}
)


def free_port(low: int = 10000, high: int = 19999) -> int:
    """A loopback TCP port in [`low`, `high`] that is free right now (never a broker's default port).

    Below Linux's ephemeral range (32768-60999) on purpose: a port taken from that range can be grabbed
    by any outgoing connection (ours, or another test's) between this check and the broker's bind, which
    made a RabbitMQ node die at boot with ``eaddrinuse``.
    """
    for _attempt in range(500):
        port = random.randint(low, high)
        if port in _DEFAULT_PORTS:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise BrokerStartError(f"no free loopback port between {low} and {high}")


def find_program(name: str, *extra: str) -> str:
    """The path of `name` (PATH, then the usual system folders); `BrokerNotInstalledError` if none."""
    path = os.pathsep.join([*extra, os.environ.get("PATH", ""), *_SEARCH])
    found = shutil.which(name, path=path)
    if found is None:
        raise BrokerNotInstalledError(f"{name} is not installed: run tools/install_brokers.sh")
    return found


class BrokerStartError(ConnectorError):
    """A test broker did not come up (the message holds the tail of its log)."""


class BrokerNotInstalledError(ConnectorError):
    """A broker of the matrix is missing: run ``tools/install_brokers.sh``."""


def _field(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def mqtt_connack(
    host: str, port: int, timeout: float = 1.0, credentials: tuple[str, str] | None = None
) -> int | None:
    """Send a bare MQTT 3.1.1 CONNECT; the CONNACK return code, or None if there was no CONNACK.

    Blocks up to about `timeout` seconds. Used to tell that a broker is ready to serve MQTT clients.
    """
    flags = 0x02 | (0xC0 if credentials else 0)  # clean session (+ username and password)
    body = b"\x00\x04MQTT\x04" + bytes([flags]) + b"\x00\x3c" + _field(b"cascade-ready-probe")
    if credentials:
        body += _field(credentials[0].encode()) + _field(credentials[1].encode())
    packet = bytes([0x10, len(body)]) + body
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(packet)
            reply = b""
            while len(reply) < 4:
                chunk = sock.recv(4 - len(reply))
                if not chunk:
                    return None
                reply += chunk
            with contextlib.suppress(OSError):  # DISCONNECT: no broker logs an abrupt close
                sock.sendall(b"\xe0\x00")
    except OSError:
        return None
    if reply[0] != 0x20:
        return None
    return reply[3]


def accepts_tcp(host: str, port: int) -> bool:
    """Whether something accepts a TCP connection on `host`:`port` (tries for up to 0.5 s)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class RunningBroker(Protocol):
    """What measurements and harnesses need from a broker: where it is, and how to log in."""

    name: str
    host: str
    port: int

    @property
    def credentials(self) -> tuple[str, str] | None: ...

    @property
    def url(self) -> str: ...


class BrokerServer:
    """A broker process on 127.0.0.1: `start`, `stop`, `kill`, `restart`, `wait_ready`, `url`.

    `name` is the matrix name (``rabbitmq``, ``ejabberd``, ...). `port` is the MQTT port.
    """

    name = "broker"
    # Brokers that accept anonymous clients only with *some* credentials (ejabberd) set these.
    username: str | None = None
    password: str | None = None

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix=f"cascade-{self.name}-"))
        self.log_path = self.directory / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    # -- what subclasses provide ------------------------------------------------------------------

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _environment(self) -> dict[str, str]:
        return dict(os.environ)

    def _before_start(self) -> None:
        """Hook: runs before each process start (Erlang brokers start epmd here)."""

    def _after_close(self) -> None:
        """Hook: runs once the process is gone for good (Erlang brokers stop epmd here)."""

    def _ready_ports(self) -> list[int]:
        """Other ports that must accept TCP before the broker counts as ready (its last listeners)."""
        return []

    # -- the shared shape -------------------------------------------------------------------------

    @property
    def credentials(self) -> tuple[str, str] | None:
        """``(username, password)`` a client must send, or None (anonymous without credentials)."""
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:{port}`` (with ``user:password@`` when the broker needs credentials)."""
        auth = f"{self.username}:{self.password}@" if self.credentials else ""
        return f"mqtt://{auth}{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        """Start the broker and return once it serves MQTT; `BrokerStartError` (with its log) if not.

        Blocks up to `timeout` seconds. A no-op while running.
        """
        if self.running:
            return
        self._before_start()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        try:
            self._process = subprocess.Popen(
                self._command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._environment(),
                cwd=self.directory,
                start_new_session=True,  # its own process group, so kill() takes every child with it
            )
        finally:
            log.close()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once a CONNECT gets CONNACK 0; `BrokerStartError` if the process dies or time runs out.

        Polls by connecting (a few attempts a second), blocking up to `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            process = self._process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise BrokerStartError(f"{self.name} exited (code {code}): {self.log_tail()}")
            if mqtt_connack(self.host, self.port, timeout=0.5, credentials=self.credentials) == 0 and all(
                accepts_tcp(self.host, port) for port in self._ready_ports()
            ):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerStartError(
                    f"{self.name} did not serve MQTT within {timeout} s: {self.log_tail()}"
                )
            time.sleep(0.05)  # polling interval between connection attempts, not a synchronisation sleep

    def stop(self, timeout: float = 30.0) -> None:
        """Stop gracefully (SIGTERM) and wait for the process to exit (SIGKILL after `timeout` s)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reap_group(process)

    def kill(self) -> None:
        """Kill the process and its children abruptly (SIGKILL to its process group) and wait."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self._reap_group(process)

    def _reap_group(self, process: subprocess.Popen[bytes]) -> None:
        # Children that outlived the leader (an Erlang VM under a shell wrapper) go with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def restart(self, timeout: float = 60.0) -> None:
        """`stop()` then `start()` on the same port(s)."""
        self.stop()
        self.start(timeout)

    def log_text(self) -> str:
        """The broker's whole log."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the broker's log, for error messages."""
        return " | ".join(self.log_text().strip().splitlines()[-lines:])

    def close(self) -> None:
        """Stop the broker, then delete its directory."""
        try:
            self.stop()
        finally:
            self._after_close()
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"{type(self).__name__}(port={self.port}, {state})"
