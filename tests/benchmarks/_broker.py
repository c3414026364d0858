"""The benchmark's own Mosquitto and Mosquitto's C clients.

The broker is the same `MosquittoServer` the tests use (free loopback port, ``set_tcp_nodelay true``),
configured not to drop QoS 1 messages under load (``max_queued_messages 0``). The arrival counter is
``mosquitto_sub -C``: a separate process, fast enough not to be the bottleneck, whose output is checked
afterwards for lost, duplicated and reordered messages.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cascade.connectors.mqtt.mosquitto import MosquittoServer

from ._workload import Delivery, check_sequence, seq_of_line

_CLIENT_PATHS = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/opt/homebrew/bin")
_ids = itertools.count()
_READY = b"READY"


class Endpoint(Protocol):
    """Where a broker serves MQTT: the run's `MosquittoServer`, or another broker (RabbitMQ)."""

    @property
    def host(self) -> str:
        """The loopback address."""
        ...

    @property
    def port(self) -> int:
        """The MQTT port."""
        ...

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        ...


class BenchError(RuntimeError):
    """The harness itself failed (a client did not start, a run did not finish in time)."""


def find_client(name: str) -> str:
    """The path of a Mosquitto C client (``mosquitto_pub``/``mosquitto_sub``); BenchError if missing."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *_CLIENT_PATHS])
    found = shutil.which(name, path=path)
    if found is None:
        raise BenchError(f"{name} not found (Debian/Ubuntu: apt-get install mosquitto-clients)")
    return found


def start_broker() -> MosquittoServer:
    """A started private broker that queues QoS 1 messages without limit (nothing dropped under load)."""
    server = MosquittoServer(max_queued_messages=0, persistence=False)
    server.start()
    return server


def unique(prefix: str) -> str:
    """A name unique in this process (client ids, topics)."""
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


def c_publish(
    server: Endpoint,
    topic: str,
    *,
    message: bytes | None,
    retain: bool = False,
    qos: int = 1,
    timeout: float = 10.0,
) -> None:
    """Publish one message with ``mosquitto_pub`` (``None`` sends a zero-length payload); blocks."""
    args = [find_client("mosquitto_pub"), "-h", server.host, "-p", str(server.port), "-t", topic]
    args += ["-q", str(qos), "-i", unique("bench-pub")]
    if retain:
        args.append("-r")
    if message is None:
        args.append("-n")
    else:
        args += ["-s"]
    try:
        subprocess.run(args, input=message or b"", capture_output=True, timeout=timeout, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"mosquitto_pub failed: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Arrivals:
    """What the counter saw: the delivery check and when the last message arrived (perf_counter)."""

    delivery: Delivery
    last_arrival: float
    complete: bool


class ArrivalCounter:
    """``mosquitto_sub -C expected+1`` on `topic`, started and subscribed before anything is published.

    Readiness without sleeping: a retained marker is stored on the topic first; the subscriber's first
    output line is that marker, which the broker sends only once the subscription is in place. The
    marker is cleared when the counter is closed.
    """

    def __init__(
        self, server: Endpoint, topic: str, expected: int, qos: int, *, mqtt5: bool = False
    ) -> None:
        self.server = server
        self.topic = topic
        self.expected = expected
        self.qos = qos
        # MQTT 5 lets the broker send up to 65 535 QoS 1 messages unacknowledged (the client's Receive
        # Maximum); with 3.1.1 Mosquitto's max_inflight_messages (20) limits what it sends a subscriber.
        self.mqtt5 = mqtt5
        self._dir = Path(tempfile.mkdtemp(prefix="cascade-bench-"))
        self._out_path = self._dir / "arrivals.txt"
        self._process: subprocess.Popen[bytes] | None = None
        self._exit_time: float | None = None
        self._waiter: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start the subscriber; returns once its subscription is in place. Blocks up to `timeout` s."""
        c_publish(self.server, self.topic, message=_READY, retain=True)
        args = [find_client("mosquitto_sub"), "-h", self.server.host, "-p", str(self.server.port)]
        args += ["-t", self.topic, "-q", str(self.qos), "-C", str(self.expected + 1)]
        args += ["-i", unique("bench-sub")]
        if self.mqtt5:
            args += ["-V", "mqttv5"]
        with open(self._out_path, "wb") as out:
            self._process = subprocess.Popen(
                args, stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
            )
        self._waiter = threading.Thread(target=self._wait_exit, daemon=True)
        self._waiter.start()
        deadline = time.monotonic() + timeout
        while self._out_path.stat().st_size == 0:
            if self._process.poll() is not None:
                raise BenchError(f"mosquitto_sub exited early with code {self._process.returncode}")
            if time.monotonic() > deadline:
                raise BenchError("mosquitto_sub did not subscribe in time")
            time.sleep(0.001)

    def _wait_exit(self) -> None:
        assert self._process is not None
        self._process.wait()
        self._exit_time = time.perf_counter()

    def wait(self, idle_timeout: float = 2.0, total_timeout: float = 120.0) -> Arrivals:
        """Block until every message arrived, or nothing arrived for `idle_timeout` s; then check them.

        Incomplete runs report the time of the last observed growth of the output (10 ms resolution).
        """
        process = self._process
        if process is None:
            raise BenchError("ArrivalCounter.wait() before start()")
        size = -1
        last_growth = time.perf_counter()
        deadline = time.monotonic() + total_timeout
        complete = True
        while self._exit_time is None:
            now = time.perf_counter()
            current = self._out_path.stat().st_size
            if current != size:
                size, last_growth = current, now
            elif now - last_growth > idle_timeout or time.monotonic() > deadline:
                complete = False
                break
            time.sleep(0.01)
        if not complete:
            process.kill()
            process.wait()
            if self._waiter is not None:
                self._waiter.join()
        end = self._exit_time if complete and self._exit_time is not None else last_growth
        lines = self._out_path.read_bytes().splitlines()
        if lines and lines[0] == _READY:
            lines = lines[1:]
        delivery = check_sequence((seq_of_line(line) for line in lines), self.expected)
        return Arrivals(delivery=delivery, last_arrival=end, complete=complete)

    def close(self) -> None:
        """Stop the subscriber if still running, clear the retained marker, delete the output."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        if self.server.running:
            c_publish(self.server, self.topic, message=None, retain=True)
        shutil.rmtree(self._dir, ignore_errors=True)
