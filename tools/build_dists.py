"""Build the three distributions (sdist + wheel each) into dist/ (``./dev build``, ``hatch run build``).

Each sdist is built from packages/<name>, then its wheel is built from the unpacked sdist (as
``python -m build`` does), so a file missing from an sdist breaks the build here rather than for a
user. Needs only hatchling importable by this interpreter. Old cascade_connector_* files in the
output folder are removed first, so ``pip install dist/*.whl`` never picks a stale version.

Usage: python tools/build_dists.py [--outdir DIR] [--expect-version X.Y.Z]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["cascade-connector-protocol", "cascade-connector-mqtt", "cascade-connector-testing"]
_HOOK = "import sys, hatchling.build as backend; print(backend.build_{kind}(sys.argv[1]))"


def version_of(package: str) -> str:
    data = tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text(encoding="utf-8"))
    version = data["project"]["version"]
    assert isinstance(version, str)
    return version


def _hook(kind: str, source: Path, outdir: Path) -> Path:
    """Run hatchling's PEP 517 hook `build_{kind}` in `source`; return the file it wrote."""
    result = subprocess.run(
        [sys.executable, "-c", _HOOK.format(kind=kind), str(outdir)],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"build_dists: building the {kind} of {source.name} failed (see above)")
    return outdir / result.stdout.strip().splitlines()[-1]


def build(package: str, outdir: Path) -> list[Path]:
    """Build `package`'s sdist, then its wheel from the unpacked sdist; return both paths."""
    sdist = _hook("sdist", ROOT / "packages" / package, outdir)
    with tempfile.TemporaryDirectory(prefix="cascade-build-") as scratch, tarfile.open(sdist) as archive:
        archive.extractall(scratch, filter="data")
        (unpacked,) = Path(scratch).iterdir()
        wheel = _hook("wheel", unpacked, outdir)
    return [sdist, wheel]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--outdir", type=Path, default=ROOT / "dist", help="default: dist/ at the root")
    parser.add_argument("--expect-version", help="fail unless every package has this version (releases)")
    options = parser.parse_args(argv)
    try:
        import hatchling  # noqa: F401
    except ImportError:
        print("build_dists: hatchling is not installed here: pip install 'hatchling>=1.27'", file=sys.stderr)
        return 2
    versions = {package: version_of(package) for package in PACKAGES}
    if options.expect_version and set(versions.values()) != {options.expect_version}:
        print(f"build_dists: expected version {options.expect_version}, found {versions}", file=sys.stderr)
        return 1
    outdir: Path = options.outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    for stale in outdir.glob("cascade_connector_*"):
        stale.unlink()
    for package in PACKAGES:
        for path in build(package, outdir):
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            print(f"{shown}  ({path.stat().st_size // 1024 or 1} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
