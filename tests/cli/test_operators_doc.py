"""docs/operators.md is real: every console session runs against a fresh Mosquitto and prints what it shows.

Markers (HTML comments, invisible on the rendered page) directly before a fenced block:

- ``<!-- session [users=NAME:PASSWORD] -->`` before a ```console block: the block runs on a fresh private
  broker (with those users, if any) with ``CASCADE_MQTT_URL`` pointing at it. The comment's body may list
  ``retain TOPIC JSON`` (published retained first) and ``publish TOPIC JSON`` lines (published after a
  ``watch`` command is subscribed, or before the commands otherwise). In the block, ``$ `` lines are
  commands (``echo $?`` prints the last exit code) and the lines after them their stdout and stderr;
  ``^C`` ends a ``watch`` with Ctrl-C (which must exit 0).
- ``<!-- live-table width=N -->`` before a ```text block: the rich live table of ``watch`` rendered at
  that width from the messages of the *next* session block.

Comparison: ``localhost:1883`` in the doc stands for the private broker's address; ``...`` matches any
text; runs of spaces count as one, durations (``10m 00s``) match any duration and ``"age_s": N`` any
age, since a second may pass between two commands and the doc's timestamps are in the past.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.mqtt.operator import (
    LinkMonitor,
    LinkState,
    LinkView,
    WatchModel,
    format_event,
    live_title,
    render_live,
    telemetry_filter,
)
from cascade.connectors.protocol import ConnectorStats
from rich.console import Console

from .conftest import SCRIPT, Probe, WatchProcess, cli_env

DOC = Path(__file__).resolve().parents[2] / "docs" / "operators.md"
DOC_ADDRESS = "localhost:1883"
BLOCK = re.compile(
    r"<!-- (?P<kind>session|live-table)(?P<options>[^\n]*?)(?:\n(?P<setup>.*?))? ?-->\n"
    r"```(?P<lang>\w+)\n(?P<body>.*?)^```",
    re.MULTILINE | re.DOTALL,
)
DURATION = re.compile(r"\b\d+d \d\dh\b|\b\d+h \d\dm\b|\b\d+m \d\ds\b|\b\d+s\b")
AGE = re.compile(r'"age_s": -?[\d.]+')
LIVE_TABLE_NOW = datetime.fromisoformat("2024-05-01T12:00:05Z").timestamp()
"""When the doc's live table is drawn: 5 s after its worker came online."""

pytestmark = pytest.mark.mosquitto


@dataclass
class Block:
    line: int
    kind: str
    options: dict[str, str]
    retain: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    publish: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    body: str = ""


def _blocks() -> list[Block]:
    text = DOC.read_text(encoding="utf-8")
    blocks = []
    for match in BLOCK.finditer(text):
        options = dict(option.split("=", 1) for option in match["options"].split())
        block = Block(text.count("\n", 0, match.start()) + 1, match["kind"], options, body=match["body"])
        for setup in (match["setup"] or "").splitlines():
            if not setup.strip():
                continue
            verb, topic, payload = setup.split(" ", 2)
            assert verb in ("retain", "publish"), setup
            getattr(block, verb).append((topic, json.loads(payload)))
        expected_lang = "console" if block.kind == "session" else "text"
        assert match["lang"] == expected_lang, (
            f"line {block.line}: a {block.kind} marker needs ```{expected_lang}"
        )
        blocks.append(block)
    return blocks


BLOCKS = _blocks()
SESSIONS = [b for b in BLOCKS if b.kind == "session"]
TABLES = [b for b in BLOCKS if b.kind == "live-table"]


def test_the_doc_has_examples_of_every_command() -> None:
    commands = [line for b in SESSIONS for line in b.body.splitlines() if line.startswith("$ cascade-mqtt ")]
    for command in ("pause", "resume", "limit", "constraints", "status", "watch"):
        assert any(f" {command}" in line for line in commands), command
    assert TABLES


def _normalise(text: str) -> str:
    lines = [
        re.sub(" +", " ", DURATION.sub("<duration>", AGE.sub('"age_s": <age>', line.rstrip())))
        for line in text.strip("\n").splitlines()
    ]
    return "\n".join(lines)


def _matches(expected: str, actual: str) -> bool:
    pattern = ".*?".join(re.escape(part) for part in _normalise(expected).split("..."))
    return re.fullmatch(pattern, _normalise(actual), re.DOTALL) is not None


def _steps(body: str) -> list[tuple[str, str]]:
    """(command, expected output) pairs."""
    steps: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"output before any command: {line!r}"
            steps[-1][1].append(line)
    return [(command, "\n".join(lines)) for command, lines in steps]


@pytest.mark.parametrize("block", SESSIONS, ids=[f"line-{b.line}" for b in SESSIONS])
def test_session(block: Block, mosquitto_factory: Callable[..., MosquittoServer], tmp_path: Path) -> None:
    users = dict([block.options["users"].split(":", 1)]) if "users" in block.options else None
    for spec in block.options.get("files", "").split(",") if "files" in block.options else []:
        name, content = spec.split(":", 1)  # files the commands read, in their working directory
        (tmp_path / name).write_text(content + "\n")
    server = mosquitto_factory(users=users)
    address = f"127.0.0.1:{server.port}"
    env = cli_env(CASCADE_MQTT_URL=f"mqtt://{address}")
    probe = Probe(server, username=next(iter(users.items())) if users else None)
    try:
        for topic, payload in block.retain:
            probe.publish(topic, payload, retain=True)
        if not any(command.startswith("cascade-mqtt watch") for command, _ in _steps(block.body)):
            for topic, payload in block.publish:
                probe.publish(topic, payload)
        last_code = 0
        for command, expected in _steps(block.body):
            if command == "echo $?":
                actual = str(last_code)
            elif command.startswith("cascade-mqtt watch"):
                actual, last_code = _watch(command, expected, address, env, probe, block)
            else:
                argv = shlex.split(command.replace(DOC_ADDRESS, address))
                assert argv[0] == "cascade-mqtt"
                done = subprocess.run(
                    [str(SCRIPT), *argv[1:]],
                    capture_output=True,
                    text=True,
                    env=env,
                    cwd=tmp_path,
                    timeout=60,
                    check=False,
                )
                actual, last_code = done.stdout + done.stderr, done.returncode
                assert "Traceback" not in done.stderr
            actual = actual.replace(address, DOC_ADDRESS)
            assert _matches(expected, actual), (
                f"line {block.line}: $ {command}\n--- doc\n{expected}\n--- got\n{actual}"
            )
    finally:
        probe.close()


def _watch(
    command: str, expected: str, address: str, env: dict[str, str], probe: Probe, block: Block
) -> tuple[str, int]:
    lines = expected.splitlines()
    assert lines[-1] == "^C", "a watch session ends with ^C"
    wanted = lines[:-1]
    argv = shlex.split(command.replace(DOC_ADDRESS, address))
    watch = WatchProcess(*argv[2:], env=env)
    try:
        watch.wait_ready()
        for topic, payload in block.publish:
            probe.publish(topic, payload)
        for _ in wanted:
            watch.out.wait_for(lambda line: True)
        code = watch.interrupt()
    finally:
        watch.kill()
    return "\n".join(watch.out.rest()) + "\n^C", code


@pytest.mark.parametrize("block", TABLES, ids=[f"line-{b.line}" for b in TABLES])
def test_live_table(block: Block) -> None:
    source = next(b for b in SESSIONS if b.line > block.line)
    state = WatchModel(clock=lambda: LIVE_TABLE_NOW)
    state.link = LinkView(LinkState.CONNECTED, 0.0)  # what `watch` reports while its connection is up
    for topic, payload in [*source.retain, *source.publish]:
        state.on_message(topic, payload)
    out = io.StringIO()
    console = Console(file=out, width=int(block.options["width"]), color_system=None, force_terminal=False)
    console.print(
        render_live(
            state, title=live_title(f"mqtt://{DOC_ADDRESS}", telemetry_filter("etl"), "5"), now=LIVE_TABLE_NOW
        )
    )
    actual = "\n".join(line.rstrip() for line in out.getvalue().splitlines())
    assert actual == block.body.rstrip("\n"), (
        f"line {block.line}: the doc's table is stale; it renders as\n{actual}"
    )


PYTHON_EXAMPLE = re.compile(
    r"<!-- python-example -->\n```python\n(?P<code>.*?)^```\n\nIt prints:\n\n```text\n(?P<output>.*?)^```",
    re.MULTILINE | re.DOTALL,
)


def test_the_python_example_runs(mosquitto_factory: Callable[..., MosquittoServer], tmp_path: Path) -> None:
    (match,) = PYTHON_EXAMPLE.finditer(DOC.read_text(encoding="utf-8"))
    script = tmp_path / "example.py"
    script.write_text(match["code"])
    server = mosquitto_factory()
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=cli_env(CASCADE_MQTT_URL=server.url),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _matches(match["output"], done.stdout), f"--- doc\n{match['output']}--- got\n{done.stdout}"


class _Flaky:
    """A connector whose connection the test turns off and on (only what `LinkMonitor` reads)."""

    def __init__(self) -> None:
        self.connected = True
        self.reconnects = 0

    @property
    def stats(self) -> ConnectorStats:
        return ConnectorStats(reconnects=self.reconnects)


def test_the_connection_lines_are_what_watch_prints() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### When `watch` loses its own connection", 1)[1]
    expected = section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    stamps = [datetime.fromisoformat(line.split("  ", 1)[0]).timestamp() for line in expected]
    connector, now = _Flaky(), [stamps[0] - 60]
    monitor = LinkMonitor(cast(Any, connector), clock=lambda: now[0])
    model = WatchModel()
    lines = []
    for stamp, up in zip(stamps, (False, True), strict=True):
        now[0] = stamp
        connector.connected = up
        connector.reconnects += up
        change = monitor.poll()
        assert change is not None
        lines.append(format_event(model.on_link(change)))
    assert lines == expected
