"""The commands docs/brokers.md shows, run as a reader would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_serve_once_starts_a_broker_and_cleans_up() -> None:
    result = _run("tests.brokers.serve", "aedes", "--once")
    assert result.returncode == 0, result.stderr
    assert "aedes serving MQTT at mqtt://127.0.0.1:" in result.stdout
    assert "(CONNACK 0)" in result.stdout


def test_serve_names_the_brokers_when_given_none() -> None:
    result = _run("tests.brokers.serve")
    assert result.returncode == 2
    assert "rabbitmq-cluster" in result.stderr


def test_the_report_check_passes_on_the_committed_docs() -> None:
    result = _run("tests.brokers.report", "--check")
    assert result.returncode == 0, result.stderr
