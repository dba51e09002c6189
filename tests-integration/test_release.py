"""The release command, on a throwaway clone of this repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    run(tmp_path, "git", "clone", "--quiet", str(ROOT), str(target))
    run(target, "git", "config", "user.email", "release@test.invalid")
    run(target, "git", "config", "user.name", "Release Test")
    return target


def status(repo: Path) -> str:
    return run(repo, sys.executable, "scripts/release.py", "status")


def test_status_tag_then_only_changed_packages_show_changes(clone: Path) -> None:
    packages = sorted(p.name for p in (clone / "packages").iterdir())
    before = status(clone)
    for name in packages:
        assert f"would release {name}-v" in before

    run(clone, sys.executable, "scripts/release.py", "tag")
    tags = run(clone, "git", "tag", "--list").split()
    assert len(tags) == len(packages)
    assert "traffik-v2.0.0" in tags
    assert status(clone).count("nothing to release") == len(packages)

    (clone / "packages" / "traffik-core" / "src" / "traffik" / "rates.py").write_text(
        (clone / "packages" / "traffik-core" / "src" / "traffik" / "rates.py").read_text() + "\n"
    )
    run(clone, "git", "commit", "--quiet", "-am", "Tidy rates")
    after = status(clone)
    core_section = after.split("traffik-core ", 1)[1].split("\ntraffik-", 1)[0]
    assert "1 change(s) since traffik-core-v0.1.0" in core_section
    assert "Tidy rates" in core_section
    assert after.count("nothing to release") == len(packages) - 1


def test_tagging_refuses_without_a_changelog_section(clone: Path) -> None:
    (clone / "packages" / "traffik-resilience" / "CHANGELOG.md").write_text("# Changelog\n")
    result = subprocess.run(
        [sys.executable, "scripts/release.py", "tag"], cwd=clone, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "traffik-resilience" in result.stderr
    assert run(clone, "git", "tag", "--list") == ""
