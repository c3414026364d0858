"""``hatch run demo`` end to end: over a private Mosquitto, a given URL, and the in-memory fallback."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from cascade.connectors.mqtt.mosquitto import MosquittoServer

from .conftest import DEMO_PATH

TASKS = 24
CAP = 2


def run_demo(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    summary_file = tmp_path / "summary.json"
    done = subprocess.run(
        [
            sys.executable,
            str(DEMO_PATH),
            "--seed",
            "11",
            "--tasks",
            str(TASKS),
            "--speed",
            "4",
            "--cap",
            str(CAP),
            "--summary-json",
            str(summary_file),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(summary_file.read_text())
    assert isinstance(summary, dict)
    return summary, done.stdout


def check_summary(demo: Any, summary: dict[str, Any], stdout: str) -> None:
    expected = demo.expected_outcome(demo.make_workflow(TASKS, 11))
    engine = {state: n for state, n in summary["engine_states"].items() if n}
    assert engine == {state: n for state, n in expected.items() if n}
    assert sum(summary["engine_states"].values()) == TASKS
    assert summary["watcher_states"] == summary["engine_states"]  # every state change arrived

    pause = summary["pause"]
    assert pause["observed"] is True
    assert pause["scope"].startswith("project:")
    assert 0 <= pause["command_to_observed_ms"] <= pause["command_to_still_ms"]
    assert pause["started_while_paused"] == 0
    assert pause["running_seen_while_held"] == 0

    cap = summary["cap"]
    assert cap["limit"] == CAP
    assert cap["max_running_after_cap"] <= CAP
    assert cap["max_running_before_cap"] > CAP

    messages = summary["messages"]
    assert messages["published"] >= 2 * TASKS  # at least PENDING and a final state per task
    assert messages["received"] >= messages["by_part"]["watcher"]["delivered"] > 2 * TASKS
    assert messages["dropped"] == 0
    assert messages["malformed_skipped"] == 0

    assert [c.split()[0] for c in summary["operator_commands"]] == ["pause", "resume", "limit", "resume"]
    for line in (
        "Summary",
        "tasks by state",
        "pause -> still",
        "concurrency cap",
        "operator> cascade-mqtt pause",
    ):
        assert line in stdout


@pytest.mark.mosquitto
def test_demo_over_a_private_mosquitto(demo: Any, tmp_path: Path) -> None:
    summary, stdout = run_demo(tmp_path)
    assert summary["transport"] == "mosquitto"
    assert summary["transport_note"] is None
    assert "over a private Mosquitto on mqtt://127.0.0.1:" in stdout
    check_summary(demo, summary, stdout)


@pytest.mark.mosquitto
def test_demo_over_a_given_url(demo: Any, tmp_path: Path, mosquitto: MosquittoServer) -> None:
    project = f"demo-{uuid.uuid4().hex[:8]}"  # the session broker is shared: keep to our own project
    summary, stdout = run_demo(tmp_path, "--url", mosquitto.url, "--project", project)
    assert summary["transport"] == "url"
    assert summary["pause"]["scope"] == f"project:{project}"
    check_summary(demo, summary, stdout)


def test_demo_over_the_in_memory_fallback(demo: Any, tmp_path: Path) -> None:
    summary, stdout = run_demo(tmp_path, "--in-memory")
    assert summary["transport"] == "in-memory"
    note = "note: --in-memory was given: running over the in-memory broker from cascade-connector-testing"
    assert note in stdout.splitlines()
    check_summary(demo, summary, stdout)


def test_without_mosquitto_the_demo_says_so_and_uses_the_fake(
    demo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cascade.connectors.mqtt.mosquitto as mosquitto_module

    monkeypatch.setattr(mosquitto_module, "find_mosquitto", lambda: None)
    transport = demo.choose_transport(None, in_memory=False)
    assert transport.kind == "in-memory"
    assert (
        transport.note
        == "mosquitto is not installed: running over the in-memory broker from cascade-connector-testing"
    )


def test_a_bad_url_fails_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO_PATH), "--url", "http://nowhere"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("demo: error: ")
    assert done.stderr.count("\n") == 1


def test_on_a_terminal_the_demo_shows_the_live_table(tmp_path: Path) -> None:
    import os
    import pty
    import select

    summary_file = tmp_path / "summary.json"
    argv = [sys.executable, str(DEMO_PATH), "--in-memory", "--tasks", "16", "--speed", "4"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the demo, with a terminal as stdout
        os.execv(sys.executable, [*argv, "--summary-json", str(summary_file)])
    output = b""
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 60)
            assert ready, "the demo stopped writing for 60 s"
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, output[-2000:]
    text = output.decode(errors="replace")
    assert "project/run" in text  # the live table's header
    assert "Summary" in text
    summary = json.loads(summary_file.read_text())
    assert sum(summary["engine_states"].values()) == 16
    assert summary["watcher_states"] == summary["engine_states"]
