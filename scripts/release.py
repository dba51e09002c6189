#!/usr/bin/env python3
"""Per-distribution releases: what changed since each package's last tag, and tagging.

Each distribution under ``packages/`` is versioned on its own (``_version.py``, or the
static version of the meta-package) and released under tags ``<distribution>-v<version>``.

    python3 scripts/release.py status    # per package: version, last tag, changes since
    python3 scripts/release.py tag       # tag every package whose version is new (needs
                                         # a CHANGELOG.md section for that version)

Build one with ``cd packages/<distribution> && hatch build``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "packages"
_VERSION = re.compile(r'^(?:__version__|version)\s*=\s*"([^"]+)"', re.MULTILINE)


@dataclass(frozen=True)
class Package:
    name: str
    path: Path
    version: str

    @property
    def tag(self) -> str:
        return f"{self.name}-v{self.version}"

    def changelog_has_version(self) -> bool:
        changelog = self.path / "CHANGELOG.md"
        return changelog.exists() and f"## {self.version}" in changelog.read_text()


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def packages() -> list[Package]:
    found = []
    for path in sorted(PACKAGES.iterdir()):
        pyproject = path / "pyproject.toml"
        if not pyproject.exists():
            continue
        text = pyproject.read_text()
        name = re.search(r'^name\s*=\s*"([^"]+)"', text, re.MULTILINE)
        version_file = re.search(r'^path\s*=\s*"([^"]+_version\.py)"', text, re.MULTILINE)
        source = (path / version_file.group(1)).read_text() if version_file else text
        version = _VERSION.search(source)
        if name is None or version is None:
            raise SystemExit(f"cannot read the name and version of {path}")
        found.append(Package(name.group(1), path, version.group(1)))
    return found


def last_tag(package: Package) -> str | None:
    tags = git("tag", "--list", f"{package.name}-v*", "--sort=-v:refname").splitlines()
    return tags[0] if tags else None


def changes_since(package: Package, tag: str | None) -> list[str]:
    span = f"{tag}..HEAD" if tag else "HEAD"
    log = git("log", "--format=%h %s", span, "--", str(package.path.relative_to(ROOT)))
    return log.splitlines()


def status() -> int:
    for package in packages():
        tag = last_tag(package)
        changes = changes_since(package, tag)
        released = tag == package.tag
        print(f"{package.name} {package.version}  (last tag: {tag or 'none'})")
        if released and changes:
            print(
                f"  {len(changes)} change(s) since {tag}, not released: "
                "bump the version to release them"
            )
        elif not released:
            note = (
                ""
                if package.changelog_has_version()
                else "  (CHANGELOG.md has no section for it yet)"
            )
            print(f"  would release {package.tag}{note}")
        else:
            print("  nothing to release")
        for line in changes[:20]:
            print(f"    {line}")
        if len(changes) > 20:
            print(f"    ... and {len(changes) - 20} more")
    return 0


def tag() -> int:
    missing = [p.name for p in packages() if last_tag(p) != p.tag and not p.changelog_has_version()]
    if missing:
        print(
            f"CHANGELOG.md needs a section for the new version of: {', '.join(missing)}",
            file=sys.stderr,
        )
        return 1
    for package in packages():
        if last_tag(package) != package.tag:
            git("tag", "-a", package.tag, "-m", f"{package.name} {package.version}")
            print(f"tagged {package.tag}")
    return 0


def main(argv: list[str]) -> int:
    commands = {"status": status, "tag": tag}
    if len(argv) != 1 or argv[0] not in commands:
        print(f"usage: python3 scripts/release.py {{{'|'.join(commands)}}}", file=sys.stderr)
        return 2
    return commands[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
