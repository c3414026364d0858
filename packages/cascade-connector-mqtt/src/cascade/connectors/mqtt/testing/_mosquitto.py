"""`MosquittoServer`: a private Mosquitto broker process for tests, demos and benchmarks.

It runs the system's ``mosquitto`` binary on a free loopback port from a generated config in its own
temporary directory, and can restart on the same port, be killed, and be started with TLS, a password
file or an ACL. Never used by `MqttConnector` itself.

Example::

    with MosquittoServer() as server:
        connector = MqttConnector.from_url(server.url)
"""

from __future__ import annotations

__all__ = ["MosquittoServer", "MosquittoNotFoundError", "TlsFiles", "find_mosquitto", "free_port"]

import base64
import getpass
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cascade.connectors.protocol import ConnectorError

_EXTRA_PATHS = (
    "/usr/sbin",
    "/usr/local/sbin",
    "/sbin",
    "/opt/homebrew/sbin",
    "/usr/local/opt/mosquitto/sbin",
)


class MosquittoNotFoundError(ConnectorError):
    """No ``mosquitto`` executable was found on PATH (or in the usual sbin folders)."""


def find_mosquitto() -> str | None:
    """The path of the ``mosquitto`` binary, or None if it is not installed."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *_EXTRA_PATHS])
    return shutil.which("mosquitto", path=path)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files for a TLS listener: the CA that signed the server certificate, the certificate, its key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _password_line(user: str, password: str) -> str:
    # Mosquitto 2.x "$7$" format: PBKDF2-HMAC-SHA512, 101 iterations, base64 salt and hash.
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
    return f"{user}:$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


class MosquittoServer:
    """A Mosquitto process listening on 127.0.0.1.

    - `port` (plain MQTT) and, with `tls`, `tls_port` are chosen free at construction and kept across
      `restart()`.
    - `users` (name -> password) writes a password file and disables anonymous access.
    - `acl` is the text of an ACL file (``user``/``topic read|write|readwrite`` lines).
    - `persistence` keeps retained messages across `stop()`/`start()` (saved on graceful stop).
    - `max_queued_messages` (0 = unlimited) bounds what the broker queues per client.
    - `max_packet_size` (bytes, None = no limit) is the largest packet the broker accepts (it
      disconnects a client that sends more) and announces to MQTT 5 clients in CONNACK; kept as
      the attribute of the same name.
    Raises `MosquittoNotFoundError` if the binary is missing, `ValueError` for a `max_packet_size`
    below 20 (Mosquitto refuses those).
    """

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        tls: TlsFiles | None = None,
        persistence: bool = True,
        max_queued_messages: int = 1000,
        max_packet_size: int | None = None,
        extra_config: str = "",
        executable: str | None = None,
    ) -> None:
        exe = executable or find_mosquitto()
        if exe is None:
            raise MosquittoNotFoundError(
                "mosquitto is not installed "
                "(Debian/Ubuntu: apt-get install mosquitto; macOS: brew install mosquitto)"
            )
        if max_packet_size is not None and (
            not isinstance(max_packet_size, int) or isinstance(max_packet_size, bool) or max_packet_size < 20
        ):
            raise ValueError(
                f"max_packet_size must be an int of at least 20 or None, not {max_packet_size!r}"
            )
        self.executable = exe
        self.max_packet_size = max_packet_size
        """Bytes: the broker's Maximum Packet Size (``max_packet_size`` in its config), or None."""
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls = tls
        self.tls_port = free_port() if tls is not None else None
        self._dir = Path(tempfile.mkdtemp(prefix="cascade-mosquitto-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = self._dir / "mosquitto.log"
        self.config_path = self._dir / "mosquitto.conf"
        lines = [
            # Run as whoever started us (as root, mosquitto would otherwise switch to a "mosquitto" user
            # that cannot read this private directory).
            f"user {getpass.getuser()}",
            "per_listener_settings false",
            f"allow_anonymous {'false' if users else 'true'}",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {self._dir}/",
            "set_tcp_nodelay true",
            f"max_queued_messages {max_queued_messages}",
            f"log_dest file {self._log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if max_packet_size is not None:
            lines.append(f"max_packet_size {max_packet_size}")
        if users:
            password_file = self._dir / "passwords"
            password_file.write_text("".join(_password_line(u, p) + "\n" for u, p in users.items()))
            password_file.chmod(0o600)
            lines.append(f"password_file {password_file}")
        if acl is not None:
            acl_file = self._dir / "acl"
            acl_file.write_text(acl)
            acl_file.chmod(0o600)
            lines.append(f"acl_file {acl_file}")
        lines.append(f"listener {self.port} {self.host}")
        if tls is not None:
            lines += [
                f"listener {self.tls_port} {self.host}",
                f"cafile {tls.ca_file}",
                f"certfile {tls.cert_file}",
                f"keyfile {tls.key_file}",
                "require_certificate false",
            ]
        if extra_config:
            lines.append(extra_config)
        self.config_path.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:{port}``."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker and return once it accepts TCP connections on every listener.

        Blocks up to `timeout` seconds; raises `ConnectorError` with the log's tail if it does not come up.
        """
        if self.running:
            return
        log = open(self._log_path, "ab")  # noqa: SIM115 - handed to the child process
        try:
            self._process = subprocess.Popen(
                [self.executable, "-c", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        ports = [self.port] + ([self.tls_port] if self.tls_port is not None else [])
        while True:
            if self._process.poll() is not None:
                code = self._process.returncode
                raise ConnectorError(f"mosquitto exited with code {code}: {self.log_tail()}")
            if all(self._accepts(p) for p in ports):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise ConnectorError(f"mosquitto did not start within {timeout} s: {self.log_tail()}")
            time.sleep(0.01)

    def _accepts(self, port: int) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM: retained state is saved) and wait for the process to exit."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Kill the process abruptly (SIGKILL) and wait for it."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait()

    def restart(self, timeout: float = 10.0) -> None:
        """`stop()` then `start()` on the same port(s)."""
        self.stop()
        self.start(timeout)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the broker's log, for error messages."""
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def log_text(self) -> str:
        """The whole broker log."""
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        """Stop the broker and delete its directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> MosquittoServer:
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
        return f"MosquittoServer(port={self.port}, tls_port={self.tls_port}, {state})"
