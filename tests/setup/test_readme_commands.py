"""The README's two commands do all set-up with an externally managed system Python (PEP 668).

This machine, like Debian 12 and Ubuntu 24.04, has a ``/usr/bin/python3`` whose standard library
holds ``EXTERNALLY-MANAGED``: ``pip install`` into it is refused. The test takes the two commands from
README.md, clones HEAD into a temporary folder, puts ``/usr/bin`` first on PATH (no pyenv, no hatch,
no virtual environment of ours) and gives hatch a private data folder, so nothing is reused.

It runs the demo command with ``--in-memory`` (the whole first-run set-up: ``.venv-tools/`` created
with that Python, hatch installed there, hatch's environment created, then the demo). It runs the test
command with ``--collect-only`` on one test file: running the whole suite inside the suite would
recurse, and collecting proves the environment imports every package. The second command must find
the set-up done (the script is idempotent and fast on later runs).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
FIRST_RUN = "first run: creating .venv-tools/"


def readme_commands() -> list[str]:
    """The shell commands of the README's "On a fresh machine" section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## On a fresh machine", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL)]


def test_the_readme_has_exactly_two_set_up_commands() -> None:
    assert readme_commands() == ["./dev demo", "./dev test"]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert readme_commands()[1] in ci


def _externally_managed(python: Path) -> bool:
    if not python.is_file():
        return False
    stdlib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    return (Path(stdlib) / "EXTERNALLY-MANAGED").is_file()


def _user_env(tmp_path: Path) -> dict[str, str]:
    """A login shell's environment on a stock machine: system Python first, nothing of this session."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST", "HATCH", "PYENV", "VIRTUAL_ENV", "PYTHON", "COV_", "CI"))
    }
    env["PATH"] = "/usr/bin:/bin:/usr/sbin:/sbin"
    env["HATCH_DATA_DIR"] = str(tmp_path / "hatch-data")  # a fresh hatch environment, removed after
    env["HATCH_CACHE_DIR"] = str(tmp_path / "hatch-cache")
    return env


@pytest.mark.slow
def test_the_readme_commands_set_up_everything_with_an_externally_managed_python(tmp_path: Path) -> None:
    assert _externally_managed(SYSTEM_PYTHON), (
        f"{SYSTEM_PYTHON} is not an externally managed interpreter (PEP 668): this test needs a "
        "Debian or Ubuntu system Python (apt-get install python3 python3-venv)"
    )
    env = _user_env(tmp_path)
    which = subprocess.run(["sh", "-c", "command -v python3"], env=env, capture_output=True, text=True)
    assert which.stdout.strip() == str(SYSTEM_PYTHON)
    refused = subprocess.run(
        [SYSTEM_PYTHON, "-m", "pip", "install", "--dry-run", "hatch"], env=env, capture_output=True, text=True
    )
    assert refused.returncode != 0  # what the README used to say: refused (or no pip at all)

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, capture_output=True)
    demo, test = (shlex.split(command) for command in readme_commands())

    first = subprocess.run(
        [*demo, "--in-memory"], cwd=clone, env=env, capture_output=True, text=True, timeout=600
    )
    output = first.stdout + first.stderr
    assert first.returncode == 0, output[-4000:]
    assert FIRST_RUN in output
    assert "installing hatch" in output
    assert "Successfully installed" in output  # pip's progress is shown, not hidden
    config = (clone / ".venv-tools" / "pyvenv.cfg").read_text(encoding="utf-8")
    assert "home = /usr/bin" in config.splitlines()
    assert (clone / ".venv-tools" / "bin" / "hatch").is_file()
    assert (tmp_path / "hatch-data").is_dir()  # hatch's environment went where we said

    second = subprocess.run(
        [*test, "--collect-only", "-q", "packages/cascade-connector-protocol/tests/test_admission.py"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=300,
    )
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-4000:]
    assert FIRST_RUN not in output
    assert re.search(r"\b\d+ tests? collected\b", output), output[-2000:]
    shutil.rmtree(tmp_path / "hatch-data")  # a whole development environment: do not keep it around
