"""Workspace-wide pytest setup: only what is universal, the "no skipped test" rule.

Every test in this repository runs whole: a skipped test fails the session (the contract suite must run
against every connector with no skips, and the MQTT tests need a real broker, which the session starts).
Nothing here imports a package under test, so each package's tests run on their own; the Mosquitto
fixtures live in the MQTT package's tests/conftest.py and in tests/conftest.py.
"""

from __future__ import annotations

from typing import Any

import pytest

# ---------------------------------------------------------------------------------------------
# No skips: a skipped test is a failure in this repository.

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped:
        terminalreporter.section("skipped tests are failures in this repository", red=True)
        for nodeid in _skipped:
            terminalreporter.line(f"SKIPPED (not allowed): {nodeid}")
