"""The distributions install and work outside the workspace, the way the install sections say.

`tools/build_dists.py` (``./dev build``) builds the three sdists and wheels. The README's install
commands run literally (``sh -e -c``, with HOME in a temporary folder so ``~/.venvs/cascade`` is a
fresh virtual environment outside the workspace, no editable installs): the wheel command installs
the built wheels, then the engine quickstart runs there (its pytest file over the in-memory
connector, its production script over MQTT against a Mosquitto this test session started) and the
operator CLI; the source commands install from the package folders (protocol first, so pip finds
the sibling). Metadata: compatible sibling pins, the MIT licence file in every sdist and wheel.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cascade.connectors.mqtt.mosquitto import MosquittoServer

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["cascade-connector-protocol", "cascade-connector-mqtt", "cascade-connector-testing"]
LICENSE = (ROOT / "LICENSE").read_text(encoding="utf-8")
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")

pytestmark = pytest.mark.slow


def _version(package: str) -> str:
    data = tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text(encoding="utf-8"))
    version: str = data["project"]["version"]
    return version


def _env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no pytest or hatch variables, no workspace on the path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST", "HATCH", "VIRTUAL_ENV", "PYTHONPATH", "COV_"))
    }
    # HOME may be moved to a temporary folder: keep pip's cache where it is.
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CACHE_DIR=PIP_CACHE, **extra)
    return env


def install_blocks() -> list[str]:
    """The shell blocks of the README's install section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Install the packages", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL)


def _sh(block: str, cwd: Path, home: Path) -> str:
    """Run a README block as a user would paste it into a shell (stops at the first failing line)."""
    return _run(["sh", "-e", "-c", block], cwd=cwd, HOME=str(home))


def _run(args: list[str | Path], cwd: Path, timeout: float = 300, **env: str) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=_env(**env), capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The built distributions, in a folder named ``dist`` as ``./dev build`` makes it."""
    outdir = tmp_path_factory.mktemp("build") / "dist"
    _run([sys.executable, ROOT / "tools" / "build_dists.py", "--outdir", outdir], cwd=ROOT)
    yield outdir
    shutil.rmtree(outdir.parent, ignore_errors=True)


def test_the_install_section_has_a_block_per_kind_of_user() -> None:
    blocks = install_blocks()
    assert len(blocks) == 4
    assert sum("dist/" in block for block in blocks) == 1
    for block in blocks:
        assert block.startswith("python3 -m venv ~/.venvs/cascade\n")
        if "./packages/cascade-connector-mqtt" in block:  # the sibling it needs comes first
            protocol = block.index("./packages/cascade-connector-protocol")
            assert protocol < block.index("./packages/cascade-connector-mqtt")


def test_build_makes_one_sdist_and_one_wheel_per_package(dist: Path) -> None:
    names = sorted(p.name for p in dist.iterdir())
    expected = []
    for package in PACKAGES:
        stem = f"{package.replace('-', '_')}-{_version(package)}"
        expected += [f"{stem}-py3-none-any.whl", f"{stem}.tar.gz"]
    assert names == sorted(expected)


def test_siblings_pin_a_compatible_protocol(dist: Path) -> None:
    protocol = _version("cascade-connector-protocol")
    major, minor = (int(part) for part in protocol.split(".")[:2])
    pin = f"cascade-connector-protocol<{major}.{minor + 1},>={major}.{minor}"
    for package in PACKAGES[1:]:
        assert _version(package) == protocol  # released together
        (wheel,) = dist.glob(f"{package.replace('-', '_')}-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            metadata = archive.read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
        assert f"Requires-Dist: {pin}" in metadata.splitlines()


def test_every_sdist_and_wheel_carries_the_mit_license(dist: Path) -> None:
    assert LICENSE.startswith("MIT License")
    for package in PACKAGES:
        stem = f"{package.replace('-', '_')}-{_version(package)}"
        assert (ROOT / "packages" / package / "LICENSE").read_text(encoding="utf-8") == LICENSE
        with tarfile.open(dist / f"{stem}.tar.gz") as sdist:
            members = set(sdist.getnames())
            license_file = sdist.extractfile(f"{stem}/LICENSE")
            assert license_file is not None
            assert license_file.read().decode() == LICENSE
        assert {f"{stem}/README.md", f"{stem}/pyproject.toml", f"{stem}/PKG-INFO"} <= members
        leaf = package.removeprefix("cascade-connector-")
        assert f"{stem}/src/cascade/connectors/{leaf}/py.typed" in members
        with zipfile.ZipFile(dist / f"{stem}-py3-none-any.whl") as wheel:
            assert wheel.read(f"{stem}.dist-info/licenses/LICENSE").decode() == LICENSE
            metadata = wheel.read(f"{stem}.dist-info/METADATA").decode().splitlines()
            assert "License-Expression: MIT" in metadata
            assert f"cascade/connectors/{leaf}/py.typed" in wheel.namelist()
            assert not any(name.startswith(("cascade/__init__", "cascade/connectors/__init__"))
                           for name in wheel.namelist())


@pytest.mark.mosquitto
def test_the_wheels_run_the_engine_and_the_cli_in_a_clean_venv(
    dist: Path, tmp_path: Path, mosquitto_factory: Callable[..., MosquittoServer]
) -> None:
    mosquitto = mosquitto_factory()  # private: what `status` lists below is only this test's
    (wheel_block,) = [block for block in install_blocks() if "dist/" in block]
    _sh(wheel_block, cwd=dist.parent, home=tmp_path)
    venv = tmp_path / ".venvs" / "cascade"
    bin_dir = venv / "bin"
    project = tmp_path / "my-engine"
    project.mkdir()
    for path in (ROOT / "docs" / "examples" / "quickstart").glob("*.py"):
        shutil.copy(path, project / path.name)
    python = bin_dir / "python"

    where = _run([python, "-c", "import cascade.connectors.protocol as p; print(p.__file__)"], cwd=project)
    assert Path(where.strip()).is_relative_to(venv)

    # The engine over InMemoryConnector (the quickstart's test file; pytest came with the testing wheel).
    tested = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_engine.py"], cwd=project)
    assert "1 passed" in tested

    # The engine over MqttConnector, against this session's Mosquitto.
    ran = _run([python, "run_etl.py"], cwd=project, CASCADE_MQTT_URL=mosquitto.url)
    assert ran == "{'run-42-0': 'COMPLETED', 'run-42-1': 'COMPLETED', 'run-42-2': 'COMPLETED'}\n"

    # The operator CLI, installed as a console script.
    usage = _run([bin_dir / "cascade-mqtt", "--help"], cwd=project)
    assert "usage: cascade-mqtt" in usage
    status = _run([bin_dir / "cascade-mqtt", "status", "--all", "--url", mosquitto.url], cwd=project)
    assert "etl-worker-1" in status  # the production script's presence (retained offline)


def test_the_documented_source_installs_work_in_a_clean_venv(tmp_path: Path) -> None:
    for block in install_blocks():
        if "dist/" not in block:
            _sh(block, cwd=ROOT, home=tmp_path)  # from the root of the clone, as the README says
    bin_dir = tmp_path / ".venvs" / "cascade" / "bin"
    code = (
        "import cascade.connectors.mqtt as m, cascade.connectors.testing as t, rich\n"
        "print(m.__file__, t.__file__)"
    )
    out = _run([bin_dir / "python", "-c", code], cwd=tmp_path)
    assert all(Path(f).is_relative_to(tmp_path / ".venvs") for f in out.split())
    assert "usage: cascade-mqtt" in _run([bin_dir / "cascade-mqtt", "--help"], cwd=tmp_path)
    assert not list((ROOT / "packages").glob("*/build")), "the source install left build folders behind"
