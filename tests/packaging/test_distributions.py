"""The distributions install and work outside the workspace, the way the install sections say.

`tools/build_dists.py` (``./dev build``) builds the three sdists and wheels; a fresh virtual
environment in a temporary folder (not the workspace, no editable installs) installs the wheels and
runs the engine quickstart there: its pytest file over the in-memory connector, and its production
script over MQTT against a Mosquitto this test session started; then the operator CLI. A second fresh
environment installs from the source folders with the documented command (protocol first, so pip
finds the sibling). Metadata: compatible sibling pins, the MIT licence file in every sdist and wheel.
"""

from __future__ import annotations

import os
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
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def _run(args: list[str | Path], cwd: Path, timeout: float = 300, **env: str) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=_env(**env), capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _venv(path: Path) -> Path:
    """A fresh virtual environment at `path` (outside the workspace); returns its bin folder."""
    assert not path.resolve().is_relative_to(ROOT)
    _run([sys.executable, "-m", "venv", path], cwd=path.parent)
    return path / "bin"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    outdir = tmp_path_factory.mktemp("dist")
    _run([sys.executable, ROOT / "tools" / "build_dists.py", "--outdir", outdir], cwd=ROOT)
    yield outdir
    shutil.rmtree(outdir, ignore_errors=True)


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
    bin_dir = _venv(tmp_path / "venv")
    wheels = {p.name.split("-")[0]: p for p in dist.glob("*.whl")}
    _run(
        [bin_dir / "pip", "install", "-q", wheels["cascade_connector_protocol"],
         f"{wheels['cascade_connector_mqtt']}[cli]", wheels["cascade_connector_testing"]],
        cwd=tmp_path,
    )
    project = tmp_path / "my-engine"
    project.mkdir()
    for path in (ROOT / "docs" / "examples" / "quickstart").glob("*.py"):
        shutil.copy(path, project / path.name)
    python = bin_dir / "python"

    where = _run([python, "-c", "import cascade.connectors.protocol as p; print(p.__file__)"], cwd=project)
    assert Path(where.strip()).is_relative_to(tmp_path / "venv")

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


def test_the_documented_source_install_works_in_a_clean_venv(tmp_path: Path) -> None:
    bin_dir = _venv(tmp_path / "venv")
    # The command of the install sections, run from the root of the clone.
    _run(
        [bin_dir / "pip", "install", "-q", "./packages/cascade-connector-protocol",
         "./packages/cascade-connector-mqtt"],
        cwd=ROOT,
    )
    out = _run(
        [bin_dir / "python", "-c",
         "import cascade.connectors.mqtt as m, cascade.connectors.protocol as p; print(m.__file__, p.__file__)"],
        cwd=tmp_path,
    )
    assert all(Path(f).is_relative_to(tmp_path / "venv") for f in out.split())
    assert "usage: cascade-mqtt" in _run([bin_dir / "cascade-mqtt", "--help"], cwd=tmp_path)
