#!/usr/bin/env python3
"""The two commands of a fresh clone: ``python3 dev.py demo`` and ``python3 dev.py test``.

Both run through hatch (>= 1.16, for workspaces). When no such hatch is on the PATH, one is
installed into ``.tools/`` next to this file, using only the running Python and pip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".tools"
COMMANDS = {
    "demo": ["run", "demo"],
    "test": ["run", "check"],
}


def hatch_version_ok(executable: str) -> bool:
    try:
        output = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return False
    version = output.strip().rsplit(" ", 1)[-1]
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) >= (1, 16)


def find_hatch() -> str:
    on_path = shutil.which("hatch")
    if on_path and hatch_version_ok(on_path):
        return on_path
    bin_dir = TOOLS / ("Scripts" if os.name == "nt" else "bin")
    local = bin_dir / "hatch"
    if not hatch_version_ok(str(local)):
        print("Installing hatch>=1.16 into .tools/ ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True)
        subprocess.run(
            [str(bin_dir / "python"), "-m", "pip", "install", "-q", "hatch>=1.16"], check=True
        )
    return str(local)


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] not in COMMANDS:
        print(f"usage: python3 dev.py {{{'|'.join(COMMANDS)}}} [args...]", file=sys.stderr)
        return 2
    if sys.version_info < (3, 10):  # noqa: UP036 - this file may run on an older Python
        print("Traffik needs Python 3.10 or later.", file=sys.stderr)
        return 2
    hatch = find_hatch()
    return subprocess.run([hatch, *COMMANDS[argv[0]], *argv[1:]], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
