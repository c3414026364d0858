"""What every Erlang broker needs: its own epmd on a free loopback port and a private cookie.

Nothing here touches a system epmd (port 4369) or a system cookie: `ErlangRuntime` writes a fresh random
cookie to ``<dir>/home/.erlang.cookie`` (brokers and their CLI tools find it through ``HOME``, so it never
appears in argv) and runs ``epmd -port <free> -address 127.0.0.1`` as a child it stops in `close()`.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import time
from pathlib import Path

from ._base import BrokerStartError, accepts_tcp, find_program, free_port

__all__ = ["ErlangRuntime"]


class ErlangRuntime:
    """A private epmd and cookie shared by the Erlang nodes of one test broker (or one cluster)."""

    def __init__(self, directory: Path) -> None:
        self.home = directory / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        self.epmd_port = free_port()
        self._epmd: subprocess.Popen[bytes] | None = None
        self._executable = find_program("epmd")

    def environment(self) -> dict[str, str]:
        """Variables that point an Erlang VM (or CLI) at this epmd and cookie."""
        return {
            "HOME": str(self.home),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start_epmd(self, timeout: float = 10.0) -> None:
        """Start epmd if it is not running; returns once it accepts connections."""
        if self._epmd is not None and self._epmd.poll() is None:
            return
        self._epmd = subprocess.Popen(
            [self._executable, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not accepts_tcp("127.0.0.1", self.epmd_port):
            if self._epmd.poll() is not None or time.monotonic() > deadline:
                raise BrokerStartError(f"epmd did not start on port {self.epmd_port}")
            time.sleep(0.02)  # polling interval

    def stop_epmd(self) -> None:
        """Stop epmd (once every node is gone)."""
        process, self._epmd = self._epmd, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
