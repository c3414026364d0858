"""tools/test_brokers.py: `./dev test-brokers ARGS` runs the whole matrix unless ARGS name tests in it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("test_brokers_tool", ROOT / "tools" / "test_brokers.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _tool()


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("tests/brokers", True),
        ("tests/brokers/test_truth_table.py", True),
        ("tests/brokers/test_contract_matrix.py::TestAedesContract::test_x", True),
        ("-q", False),
        ("-k", False),
        ("oversize", False),  # the value of -k
        ("tests/contract/test_mqtt_contract.py", False),
        ("tests/brokersx/test_a.py", False),
    ],
)
def test_which_arguments_name_tests_of_the_matrix(arg: str, expected: bool) -> None:
    assert TOOL.names_a_test(arg) is expected


def test_the_whole_matrix_runs_unless_a_test_of_it_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_main(args: list[str]) -> int:
        calls.append(args)
        return 0

    monkeypatch.setattr(TOOL.pytest, "main", fake_main)
    assert TOOL.main(["-q", "-k", "oversize"]) == 0
    assert TOOL.main(["tests/brokers/test_servers.py", "-q"]) == 0
    assert calls == [
        ["--timeout", "600", "tests/brokers", "-q", "-k", "oversize"],
        ["--timeout", "600", "tests/brokers/test_servers.py", "-q"],
    ]
