"""./dev's own answers that need no install: help, a missing venv module, a too old or missing Python.

Each test copies the script alone into a temporary folder (the script works relative to its own
location), so nothing is created in the workspace; interpreters that lack a piece are simulated by a
small wrapper script given as PYTHON.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _dev(tmp_path: Path, *args: str, python: str | None = None) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "dev"
    if not script.exists():
        shutil.copy(ROOT / "dev", script)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HATCH", "VIRTUAL_ENV", "CI"))}
    if python is not None:
        env["PYTHON"] = python
    return subprocess.run(
        [str(script), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _fake_python(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-python3"
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


def test_the_script_is_executable_and_posix_sh() -> None:
    script = ROOT / "dev"
    assert os.access(script, os.X_OK)
    assert script.read_text(encoding="utf-8").startswith("#!/bin/sh\n")
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0


def test_help_lists_the_commands_and_installs_nothing(tmp_path: Path) -> None:
    result = _dev(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("./dev demo", "./dev test", "./dev build", "./dev hatch"):
        assert command in result.stdout
    assert not (tmp_path / ".venv-tools").exists()


def test_an_unknown_option_is_refused(tmp_path: Path) -> None:
    result = _dev(tmp_path, "--frobnicate")
    assert result.returncode == 1
    assert "unknown option '--frobnicate'" in result.stderr


def test_a_python_without_venv_gets_the_package_to_install(tmp_path: Path) -> None:
    # Debian's python3 without python3-venv: `import ensurepip, venv` fails, everything else works.
    python = _fake_python(
        tmp_path,
        'case "$*" in *"import ensurepip, venv"*) exit 1;; esac\nexec /usr/bin/env python3 "$@"',
    )
    result = _dev(tmp_path, "test", python=python)
    assert result.returncode == 1
    assert "python3 -m venv is unavailable" in result.stderr
    assert "sudo apt-get install python3-venv" in result.stderr
    assert not (tmp_path / ".venv-tools").exists()


def test_a_too_old_python_is_named(tmp_path: Path) -> None:
    python = _fake_python(
        tmp_path, 'case "$*" in *version_info*) exit 1;; --version) echo "Python 3.9.2";; esac'
    )
    result = _dev(tmp_path, "demo", python=python)
    assert result.returncode == 1
    assert "Python 3.9.2 is too old: Python 3.11 or later is needed" in result.stderr


def test_a_missing_python_is_named(tmp_path: Path) -> None:
    result = _dev(tmp_path, "demo", python="no-such-python3")
    assert result.returncode == 1
    assert "no 'no-such-python3' on PATH" in result.stderr
