"""Each package's tests run on their own: the protocol's without the MQTT and testing packages, the
testing package's without the MQTT side (aiomqtt, paho, cryptography).

Here the collection is checked (every conftest and test module imports); .ci/run runs both in full with
``tools/run_tests_alone.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "run_tests_alone.py"


def run_alone(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("package", ["protocol", "testing"])
def test_the_package_tests_collect_with_the_other_packages_blocked(package: str) -> None:
    result = run_alone(package, "--collect-only", "-q")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "tests collected" in result.stdout, result.stdout[-500:]


def test_the_blocker_bites(tmp_path: Path) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text("import cascade.connectors.mqtt\n\n\ndef test_probe() -> None:\n    pass\n")
    result = run_alone("protocol", "--collect-only", "-q", str(probe))
    assert result.returncode != 0
    assert "cascade.connectors.mqtt is blocked" in result.stdout + result.stderr
