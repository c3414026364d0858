"""The release pieces agree: the workflow builds with tools/build_dists.py on a tag and publishes with
PyPI trusted publishing; the changelog follows Keep a Changelog; the versions move together."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["cascade-connector-protocol", "cascade-connector-mqtt", "cascade-connector-testing"]


def _versions() -> set[str]:
    found = set()
    for package in PACKAGES:
        text = (ROOT / "packages" / package / "pyproject.toml").read_text(encoding="utf-8")
        pyproject = tomllib.loads(text)
        found.add(pyproject["project"]["version"])
    return found


def test_the_release_workflow_builds_on_a_tag_and_uses_trusted_publishing() -> None:
    text = (ROOT / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    assert re.search(r"^on:\n  push:\n    tags: \[\"v\*\"\]$", text, re.MULTILINE)
    assert "id-token: write" in text
    assert "uses: pypa/gh-action-pypi-publish@release/v1" in text
    assert "password:" not in text  # trusted publishing: no token
    assert 'python tools/build_dists.py --outdir dist --expect-version "${GITHUB_REF_NAME#v}"' in text


def test_the_versions_move_together_and_the_changelog_names_them() -> None:
    (version,) = _versions()
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "[Keep a Changelog](https://keepachangelog.com/" in changelog
    headings = re.findall(r"^## (.+)$", changelog, re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert f"To be released as {version}" in changelog or f"## {version}" in changelog
    sections = set(re.findall(r"^### (.+)$", changelog, re.MULTILINE))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_build_refuses_a_tag_that_is_not_the_version(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_dists.py"), "--outdir", str(tmp_path),
         "--expect-version", "9.9.9"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert "expected version 9.9.9" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing built


def test_every_package_readme_install_command_is_one_the_readme_runs() -> None:
    """The package READMEs repeat the root README's install commands (which the packaging test runs)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8").replace("~/.venvs/cascade/bin/pip", "pip")
    for package in PACKAGES:
        text = (ROOT / "packages" / package / "README.md").read_text(encoding="utf-8")
        commands = re.findall(r"^```sh\n(.*?)^```", text.split("## Install", 1)[1], re.MULTILINE | re.DOTALL)
        assert commands, f"{package}/README.md has no install command"
        for command in commands:
            for line in command.strip().splitlines():
                assert line in readme, f"{package}: {line!r} is not (part of) a tested README command"


def test_the_engine_quickstart_install_commands_are_the_readme_ones() -> None:
    """The quickstart repeats the README's install blocks word for word (the packaging test runs those)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    page = (ROOT / "docs" / "engine-quickstart.md").read_text(encoding="utf-8")
    section = page.split("## Install", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n.*?^```\n", section, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 2
    for block in blocks:
        assert block in readme
