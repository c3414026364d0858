"""``cascade-mqtt`` polish: one command table, --version, descriptions, plurals, hints in command-line
terms, "nothing to resume", and the scripting examples of docs/operators.md run for real.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pytest
from cascade.connectors.mqtt._cli import main
from cascade.connectors.mqtt._cli.app import build_parser, cli_client_id, cli_source
from cascade.connectors.mqtt._cli.commands import COMMANDS
from cascade.connectors.mqtt._cli.exitcodes import ExitCode
from cascade.connectors.mqtt._cli.session import command_line_hint
from cascade.connectors.mqtt.mosquitto import MosquittoServer, TlsFiles, free_port
from cascade.connectors.mqtt.operator import describe_command, new_constraint, resume
from cascade.connectors.protocol import Constraint, ConstraintType, constraint_topic
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector

from .conftest import SCRIPT, Probe, cli_env, run_cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "operators.md"
SCRIPT_BLOCK = re.compile(r"<!-- script -->\n```bash\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_the_commands_live_in_one_table() -> None:
    parser = build_parser()
    assert list(_subcommands(parser)) == [spec.name for spec in COMMANDS]
    help_text = parser.format_help()
    for spec in COMMANDS:
        assert spec.help in " ".join(help_text.split())


def test_every_subcommand_has_a_description() -> None:
    subcommands = _subcommands(build_parser())
    for spec in COMMANDS:
        sub = subcommands[spec.name]
        assert sub.description == spec.description
        assert len(spec.description) > len(spec.help)
        assert " ".join(spec.description.split()[:4]) in " ".join(sub.format_help().split())


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"cascade-mqtt {version('cascade-connector-mqtt')}\n"


def test_plurals() -> None:
    one = new_constraint("project:etl", ConstraintType.CONCURRENCY, {"limit": 1})
    four = new_constraint("project:etl", ConstraintType.CONCURRENCY, {"limit": 4})
    assert describe_command(one) == "limited project:etl to 1 running task (until resumed)"
    assert describe_command(four) == "limited project:etl to 4 running tasks (until resumed)"


def test_a_clean_client_id() -> None:
    first, second = cli_client_id(), cli_client_id()
    assert first != second
    assert first.startswith(cli_source() + "-")
    assert cli_source().startswith("cascade-mqtt-cli-")
    assert not first.startswith("cascade-cascade")


def test_hints_speak_the_command_line() -> None:
    detail = (
        "127.0.0.1:8883 closed the connection before answering the MQTT CONNECT (is it a TLS port? set tls)"
    )
    assert command_line_hint(detail).endswith("(is it a TLS port? use mqtts://)")
    plain = "h:1883 closed the connection before answering the MQTT CONNECT (is it a plain, non-TLS port?)"
    assert command_line_hint(plain).endswith("(is it a plain, non-TLS port? use mqtt://)")


@pytest.mark.mosquitto
def test_a_plain_url_on_a_tls_port_says_use_mqtts(
    mosquitto_factory: Callable[..., MosquittoServer], tls_files: TlsFiles
) -> None:
    server = mosquitto_factory(tls=tls_files)
    done = run_cli("--url", f"mqtt://127.0.0.1:{server.tls_port}", "status")
    assert done.returncode == 6, done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.rstrip().endswith("(is it a TLS port? use mqtts://)")
    assert "set tls" not in done.stderr


@pytest.mark.asyncio
async def test_nothing_to_resume_sends_nothing() -> None:
    broker = InMemoryBroker()
    async with InMemoryConnector(broker, source="cli") as cli:
        done = await resume(cli, "task:nonexistent")
        await broker.settle()
    assert done.was_in_force is False
    assert [m for m in broker.history if m.topic == constraint_topic("task:nonexistent")] == []


@pytest.mark.mosquitto
def test_nothing_to_resume_exits_7(mosquitto: MosquittoServer) -> None:
    scope = "task:never-set-" + os.urandom(4).hex()
    done = run_cli("--url", mosquitto.url, "resume", scope)
    assert done.returncode == int(ExitCode.NOTHING_TO_RESUME) == 7
    assert done.stdout == ""
    assert done.stderr == f"cascade-mqtt: nothing to resume: no constraint on {scope}\n"
    assert run_cli("--url", mosquitto.url, "pause", scope, "--ttl", "30").returncode == 0
    assert (
        run_cli("--url", mosquitto.url, "resume", scope).stdout == f"resumed {scope} (its pause is cleared)\n"
    )


def test_exit_code_7_is_in_the_help_and_the_doc() -> None:
    out = io.StringIO()
    build_parser().print_help(out)
    assert "7 nothing to resume" in out.getvalue()
    assert "| 7 | `resume`: nothing to resume" in DOC.read_text()


# ---------------------------------------------------------------------------------------------
# The scripting examples of docs/operators.md, run with bash


def _scripts() -> list[str]:
    return [m["body"] for m in SCRIPT_BLOCK.finditer(DOC.read_text())]


def _bash(script: str, url: str) -> subprocess.CompletedProcess[str]:
    env = cli_env(CASCADE_MQTT_URL=url, PATH=f"{SCRIPT.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_the_doc_has_two_scripts() -> None:
    assert len(_scripts()) == 2


@pytest.mark.mosquitto
def test_the_pause_script_reports_the_real_exit_code(
    mosquitto_factory: Callable[..., MosquittoServer],
) -> None:
    pause_script, _ = _scripts()
    away = _bash(pause_script, f"mqtt://127.0.0.1:{free_port()}")
    assert away.returncode == 1
    assert away.stderr.splitlines()[-1] == "could not pause api_call (exit 3)"
    assert "api_call paused" not in away.stdout
    server = mosquitto_factory()
    done = _bash(pause_script, server.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "api_call paused"


@pytest.mark.mosquitto
def test_the_resume_script_accepts_nothing_to_resume(
    mosquitto_factory: Callable[..., MosquittoServer],
) -> None:
    pause_script, resume_script = _scripts()
    server = mosquitto_factory()
    assert _bash(pause_script, server.url).returncode == 0
    for _ in range(2):  # resumed, then nothing to resume (exit 7): both fine
        done = _bash(resume_script, server.url)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "api_call runs"
    away = _bash(resume_script, f"mqtt://127.0.0.1:{free_port()}")
    assert away.returncode == 1
    assert "api_call runs" not in away.stdout


@pytest.mark.mosquitto
def test_resuming_an_expired_constraint_is_nothing_to_resume(
    mosquitto: MosquittoServer, probe: Probe
) -> None:
    scope = "task:expired-" + os.urandom(4).hex()
    old = Constraint("old", scope, ConstraintType.PAUSE, {}, expires_at=time.time() - 60)
    probe.publish(constraint_topic(scope), old.to_dict(), retain=True)
    done = run_cli("--url", mosquitto.url, "resume", scope)
    assert done.returncode == 7
    assert (
        done.stderr
        == f"cascade-mqtt: nothing to resume: the constraint on {scope} had already expired (cleared it)\n"
    )
    assert run_cli("--url", mosquitto.url, "resume", scope).stderr.endswith(f"no constraint on {scope}\n")
