"""The workspace conftest turns any skipped test into a failed session (the contract must run whole)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT_CONFTEST = Path(__file__).resolve().parents[2] / "conftest.py"


def test_a_skipped_test_fails_the_session(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(ROOT_CONFTEST.read_text())
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_sample="""
        import pytest

        def test_runs():
            assert True

        def test_skips():
            pytest.skip("needs a capability")
        """
    )
    result = pytester.runpytest("-p", "no:cascade_connectors")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*SKIPPED (not allowed): test_sample.py::test_skips*"])


def test_a_run_without_skips_passes(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(ROOT_CONFTEST.read_text())
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_sample="def test_runs():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cascade_connectors")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
