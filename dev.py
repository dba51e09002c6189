#!/usr/bin/env python3
"""The commands of a fresh clone (``python3 dev.py COMMAND``), all through hatch.

    demo          an example app, with requests from a few clients
    test          the whole check: ruff, mypy, every test, each distribution alone, the docs
    quick         the tests that need no server and no time: core and unit tests (the inner loop)
    test-pythons  the workspace suite on other supported Pythons (all four without arguments)
    test-latest   the whole check with the newest versions the registries serve
    test-lowest   each distribution's tests with the lowest versions its requirements allow
    lock          record the versions every env installs in constraints.txt (--upgrade: the newest)

Every hatch env installs exactly the versions recorded in ``constraints.txt`` (see hatch.toml).
When no hatch >= 1.16 is on the PATH, the recorded one is installed into ``.tools/``, using only
the running Python and pip. Standard library only: this file runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".tools"
CONSTRAINTS = ROOT / "constraints.txt"
# The versions of CONSTRAINTS that the hatch envs of this checkout were installed with.
ENVS_STAMP = ROOT / ".hatch" / "constraints.sha256"
SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
# What `lock` resolves, besides every distribution with all its extras: the root pyproject's
# dependency groups (dev holds the others that envs install).
LOCKED_GROUPS = ("dev", "docs", "build", "tools")
# Variables that would constrain a resolution meant to find other versions than the recorded.
CONSTRAINT_VARIABLES = ("UV_CONSTRAINT", "UV_BUILD_CONSTRAINT", "PIP_CONSTRAINT")


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
        print("Installing hatch (the version in constraints.txt) into .tools/ ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True)
        subprocess.run(
            [str(bin_dir / "python"), "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS),
             "hatch>=1.16"],
            check=True,
        )  # fmt: skip
    # hatch.toml's scripts call `hatch` by name (`hatch run solo:test`): they must find this one.
    os.environ["PATH"] = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    return str(local)


def find_uv(hatch: str) -> str:
    """The uv that hatch installs with (hatch requires it: it sits beside hatch)."""
    beside = Path(hatch).with_name("uv")
    found = str(beside) if beside.is_file() else shutil.which("uv")
    if found is None:
        raise SystemExit("uv not found beside hatch nor on the PATH")
    return found


def unconstrained() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in CONSTRAINT_VARIABLES}


def lock(hatch: str, args: Sequence[str]) -> int:
    """Resolve every requirement of the repository once, for every supported Python.

    Pins already in constraints.txt are kept where they still fit; ``--upgrade`` (or
    ``--upgrade-package NAME``) takes the newest the registries serve.
    """
    ours = sorted(path.parent.name for path in (ROOT / "packages").glob("*/pyproject.toml"))
    command = [
        find_uv(hatch), "pip", "compile", "-",
        *(f"packages/{name}/pyproject.toml" for name in ours), "--all-extras",
        *(option for group in LOCKED_GROUPS for option in ("--group", f"pyproject.toml:{group}")),
        *(option for name in ours for option in ("--no-emit-package", name)),
        "--universal", "--python-version", SUPPORTED_PYTHONS[0],
        "--custom-compile-command", "python3 dev.py lock",
        "--output-file", CONSTRAINTS.name,
        *args,
    ]  # fmt: skip
    # Our own distributions come from the checkout (their pyproject.toml files above say
    # what they need); the lock never names them.
    editable = "".join(f"-e ./packages/{name}\n" for name in ours)
    return subprocess.run(
        command, input=editable, text=True, cwd=ROOT, env=unconstrained()
    ).returncode


def lock_digest() -> str:
    return hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest()


def envs_follow_the_lock(hatch: str) -> None:
    """Recreate this checkout's hatch envs when constraints.txt changed since they were made.

    hatch reinstalls only what a changed requirement asks for; an env made with other
    versions would otherwise keep them.
    """
    digest = lock_digest()
    if ENVS_STAMP.is_file() and ENVS_STAMP.read_text().strip() == digest:
        return
    print("constraints.txt is new to this checkout's envs: removing them ...", flush=True)
    subprocess.run([hatch, "env", "prune"], cwd=ROOT, check=True)
    ENVS_STAMP.parent.mkdir(exist_ok=True)
    ENVS_STAMP.write_text(digest + "\n")


def hatch_run(hatch: str, *args: str, env: dict[str, str] | None = None) -> int:
    return subprocess.run([hatch, "run", *args], cwd=ROOT, env=env).returncode


def find_python(version: str) -> Path | None:
    """An interpreter of ``version``: ``pythonX.Y`` on the PATH, else one pyenv installed."""
    on_path = shutil.which(f"python{version}")
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    installed = sorted(pyenv.glob(f"{version}.*/bin/python{version}"), key=release, reverse=True)
    for candidate in [*([on_path] if on_path else []), *map(str, installed)]:
        try:
            reported = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30,
            ).stdout.strip()  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            continue
        if reported == version:  # a pyenv shim of a version not selected says otherwise
            return Path(candidate).resolve()
    return None


def release(python: Path) -> tuple[int, ...]:
    """(3, 10, 13) for ``.../versions/3.10.13/bin/python3.10``: the newest patch first."""
    return tuple(int(part) for part in re.findall(r"\d+", python.parents[1].name))


def with_pythons(pythons: Sequence[Path]) -> dict[str, str]:
    """The environment with these interpreters first on the PATH, where hatch looks."""
    directories = [str(python.parent) for python in pythons]
    return {**os.environ, "PATH": os.pathsep.join([*directories, os.environ.get("PATH", "")])}


def test_pythons(hatch: str, args: Sequence[str]) -> int:
    """``hatch run +python=X pythons:test`` for each version asked (every supported one by
    default; ``--others``: all but the default env's), one after the other; pytest's
    arguments follow ``--``. A version not installed fails the run: none can be downloaded."""
    split = list(args).index("--") if "--" in args else len(args)
    versions, pytest_args = list(args[:split]), list(args[split + 1 :])
    if "--others" in versions:  # all but the default env's, which `test` covers
        versions.remove("--others")
        versions += [version for version in SUPPORTED_PYTHONS if version != default_python(hatch)]
    versions = versions or list(SUPPORTED_PYTHONS)
    unknown = [version for version in versions if version not in SUPPORTED_PYTHONS]
    if unknown:
        print(f"not a supported Python: {' '.join(unknown)}", file=sys.stderr)
        return 2
    found = {version: find_python(version) for version in versions}
    missing = [version for version, python in found.items() if python is None]
    if missing:
        print(
            f"Python {', '.join(missing)} not found (looked for pythonX.Y on the PATH and under "
            f"pyenv). Install it (pyenv install {missing[0]}), or name the versions to test.",
            file=sys.stderr,
        )
        return 1
    env = with_pythons([python for python in found.values() if python is not None])
    failed = []
    for version in versions:
        started = time.monotonic()
        print(f"== the workspace suite on Python {version} ({found[version]})", flush=True)
        status = hatch_run(hatch, f"+python={version}", "pythons:test", *pytest_args, env=env)
        outcome = f"failed ({status})" if status else "passed"
        print(f"== Python {version}: {outcome} in {time.monotonic() - started:.0f} s", flush=True)
        if status:
            failed.append(version)
    if failed:
        print(f"failed on Python {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def default_python(hatch: str) -> str:
    """The Python version of the default env (``X.Y``)."""
    command = [hatch, "run", "python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_latest(hatch: str, args: Sequence[str]) -> int:
    """The whole check in envs of its own, made afresh with the newest versions."""
    return in_fresh_envs(hatch, "latest", {}, lambda env: [["check", *args]])


def test_lowest(hatch: str, args: Sequence[str]) -> int:
    """Each distribution alone (the solo envs) with the lowest versions its requirements and
    the test group allow, on the oldest supported Python: are the lower bounds true?"""
    python = find_python(SUPPORTED_PYTHONS[0])
    if python is None:
        print(f"Python {SUPPORTED_PYTHONS[0]} not found", file=sys.stderr)
        return 1
    settings = {"UV_RESOLUTION": "lowest-direct", "HATCH_PYTHON": str(python)}
    return in_fresh_envs(
        hatch,
        "lowest",
        settings,
        lambda env: [[f"{name}:test", *args] for name in solo_envs(hatch, env)],
    )


def solo_envs(hatch: str, env: dict[str, str]) -> list[str]:
    shown = subprocess.run(
        [hatch, "env", "show", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
    ).stdout
    return [name for name in json.loads(shown) if name.startswith("solo.")]


def in_fresh_envs(
    hatch: str,
    dependencies: str,
    settings: dict[str, str],
    runs: Callable[[dict[str, str]], list[list[str]]],
) -> int:
    """Each of ``runs`` (``hatch run`` arguments) in envs made for this call only, without
    constraints.txt (TRAFFIK_DEPENDENCIES: see hatch.toml); all run, whichever fail."""
    docs = ROOT / ".hatch" / f"docs-{dependencies}"  # the docs env's own path (hatch.toml)
    shutil.rmtree(docs, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=f"traffik-{dependencies}-") as data:
        env = {**unconstrained(), **settings, "TRAFFIK_DEPENDENCIES": dependencies}
        env["HATCH_DATA_DIR"] = data
        failed = [" ".join(run) for run in runs(env) if hatch_run(hatch, *run, env=env)]
    shutil.rmtree(docs, ignore_errors=True)
    if failed:
        print(f"failed with the {dependencies} versions: {'; '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


Command = Callable[[str, Sequence[str]], int]


def script(name: str) -> Command:
    return lambda hatch, args: hatch_run(hatch, name, *args)


COMMANDS: dict[str, Command] = {
    "demo": script("demo"),
    "test": script("check"),
    "quick": script("quick"),
    "test-pythons": test_pythons,
    "test-latest": test_latest,
    "test-lowest": test_lowest,
    "lock": lock,
}
# The commands that run in this checkout's envs: those must hold the recorded versions.
IN_LOCKED_ENVS = ("demo", "test", "quick", "test-pythons")


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        print(f"usage: python3 dev.py {{{'|'.join(COMMANDS)}}} [args...]", file=sys.stderr)
        return 2
    if sys.version_info < (3, 10):  # noqa: UP036 - this file may run on an older Python
        print("Traffik needs Python 3.10 or later.", file=sys.stderr)
        return 2
    hatch = find_hatch()
    if argv[0] in IN_LOCKED_ENVS:
        envs_follow_the_lock(hatch)
    return COMMANDS[argv[0]](hatch, argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
