"""Helpers for the ``cascade-mqtt`` subprocess tests: run the console script, and a paho probe client.

The probe is an independent MQTT client (paho, not the connector under test) that publishes test
traffic and records what the CLI published, with the MQTT retain flag.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from paho.mqtt.enums import CallbackAPIVersion

SCRIPT = Path(sys.executable).with_name("cascade-mqtt")


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CASCADE_MQTT_URL"}
    env.update(extra)
    return env


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real console script to completion."""
    assert SCRIPT.exists(), f"{SCRIPT} is missing: pip install -e packages/cascade-connector-mqtt"
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env) if env is not None else cli_env(),
        check=False,
    )


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> dict[str, Any]:
        value = json.loads(self.payload) if self.payload else {}
        assert isinstance(value, dict)
        return value


class Probe:
    """A paho client on its own network thread; every received message goes to `messages`."""

    def __init__(self, server: MosquittoServer, username: tuple[str, str] | None = None) -> None:
        self.messages: queue.Queue[Received] = queue.Queue()
        self.seen: list[Received] = []
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=unique("probe-"))
        self._client.on_message = self._on_message
        self._subscribed: queue.Queue[int] = queue.Queue()
        self._client.on_subscribe = lambda client, userdata, mid, codes, props: self._subscribed.put(mid)
        if username is not None:
            self._client.username_pw_set(*username)
        self._client.connect(server.host, server.port)
        self._client.loop_start()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.messages.put(Received(message.topic, bytes(message.payload), bool(message.retain)))

    def subscribe(self, topic_filter: str) -> None:
        """Subscribe and wait for the SUBACK."""
        rc, mid = self._client.subscribe(topic_filter, qos=1)
        assert rc == paho.MQTT_ERR_SUCCESS
        assert self._subscribed.get(timeout=10) == mid

    def publish(self, topic: str, payload: Mapping[str, Any] | bytes, *, retain: bool = False) -> None:
        """Publish at qos 1 and wait for the broker's acknowledgement."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self._client.publish(topic, data, qos=1, retain=retain)
        info.wait_for_publish(timeout=10)
        assert info.is_published()

    def expect(self, predicate: Callable[[Received], bool], timeout: float = 10.0) -> Received:
        """The first message (received from now on, or not yet consumed) matching `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching message within {timeout} s; seen: {self.seen[-10:]!r}")
            try:
                message = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(message)
            if predicate(message):
                return message

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def probe(mosquitto: MosquittoServer) -> Iterator[Probe]:
    client = Probe(mosquitto)
    yield client
    client.close()


class LineReader:
    """Collects a stream's lines on a thread so tests can wait for one with a timeout."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()
        self.closed = False

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                raise AssertionError(f"no matching line within {timeout} s; got: {self.lines[-20:]!r}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.closed = True
                continue
            self.lines.append(line)
            if predicate(line):
                return line

    def rest(self, timeout: float = 15.0) -> list[str]:
        """Every line until the stream closes."""
        self._thread.join(timeout)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return self.lines
            if line is not None:
                self.lines.append(line)


class WatchProcess:
    """``cascade-mqtt watch`` running in the background, its stdout and stderr read line by line."""

    def __init__(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [str(SCRIPT), "watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(env) if env is not None else cli_env(),
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self.out = LineReader(self.process.stdout)
        self.err = LineReader(self.process.stderr)

    def wait_ready(self) -> None:
        self.err.wait_for(lambda line: line.startswith("watching "))

    def interrupt(self, timeout: float = 15.0) -> int:
        """Ctrl-C, then the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
