"""Every distribution built, and installed from the local build only, into fresh venvs.

Our wheels must never come from the registry (``traffik`` 1.x lives there): third-party
requirements are installed first, then ours with ``--no-index --find-links`` pointing at
this build.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path
from typing import TypedDict

import pytest
import uv
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "packages"
UV = uv.find_uv_bin()
WEB_FRAMEWORKS = ("starlette", "fastapi")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Dist:
    name: str
    version: str
    wheel: Path
    requires: tuple[Requirement, ...]

    def files(self) -> list[str]:
        with zipfile.ZipFile(self.wheel) as archive:
            return [n for n in archive.namelist() if ".dist-info/" not in n and not n.endswith("/")]


def _metadata(wheel: Path) -> dict[str, list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = Parser().parsestr(archive.read(name).decode())
    return {key: message.get_all(key) or [] for key in ("Name", "Version", "Requires-Dist")}


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dist]:
    out = tmp_path_factory.mktemp("dist")
    for package in sorted(PACKAGES.iterdir()):
        subprocess.run(
            [UV, "build", "--quiet", "--sdist", "--wheel", "--out-dir", str(out), str(package)],
            check=True,
        )
    built: dict[str, Dist] = {}
    for wheel in sorted(out.glob("*.whl")):
        meta = _metadata(wheel)
        name = canonicalize_name(meta["Name"][0])
        requires = tuple(Requirement(line) for line in meta["Requires-Dist"])
        built[name] = Dist(name, meta["Version"][0], wheel, requires)
    return built


def ours(dists: dict[str, Dist], name: str) -> bool:
    return canonicalize_name(name) in dists


def third_party_requirements(dists: dict[str, Dist], root: str, extras: set[str]) -> list[str]:
    """The non-Traffik requirements of installing ``root[extras]``, following our own dists."""
    found: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()

    def walk(name: str, wanted: set[str]) -> None:
        if (name, frozenset(wanted)) in seen:
            return
        seen.add((name, frozenset(wanted)))
        for requirement in dists[name].requires:
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if requirement.marker and not any(
                requirement.marker.evaluate(env) for env in environments
            ):
                continue
            if ours(dists, requirement.name):
                walk(canonicalize_name(requirement.name), set(requirement.extras))
            else:
                found.add(str(Requirement(f"{requirement.name}{requirement.specifier}")))

    walk(root, extras)
    return sorted(found)


class Venv:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.python = path / "bin" / "python"
        subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, str(path)], check=True)

    def install(self, *args: str) -> None:
        subprocess.run(
            [UV, "pip", "install", "--quiet", "--python", str(self.python), *args], check=True
        )

    def run(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-c", code], capture_output=True, text=True, cwd=self.path
        )


def install_from_build(
    dists: dict[str, Dist],
    tmp_path: Path,
    root: str,
    extras: set[str] = frozenset(),  # type: ignore[assignment]
) -> Venv:
    venv = Venv(tmp_path / "venv")
    third_party = third_party_requirements(dists, root, set(extras))
    if third_party:
        venv.install(*third_party)
    wheelhouse = str(next(iter(dists.values())).wheel.parent)
    target = f"{root}[{','.join(sorted(extras))}]" if extras else root
    venv.install("--no-index", "--find-links", wheelhouse, f"{target}=={dists[root].version}")
    return venv


SMOKE = """
import importlib, importlib.metadata as md, json, sys
import traffik
names = {}
for dist in md.distributions():
    name = dist.metadata["Name"]
    if name.startswith("traffik"):
        names[name] = dist.version
for name in traffik.__all__:
    getattr(traffik, name)
web = [m for m in ("starlette", "fastapi") if importlib.util.find_spec(m)]
print(json.dumps({"dists": names, "web": web}))
"""


class Smoke(TypedDict):
    dists: dict[str, str]
    web: list[str]


def smoke(venv: Venv) -> Smoke:
    result = venv.run(SMOKE)
    assert result.returncode == 0, result.stderr
    data: Smoke = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def test_every_distribution_builds_a_wheel_and_an_sdist(dists: dict[str, Dist]) -> None:
    expected = {
        canonicalize_name(p.name) for p in PACKAGES.iterdir() if (p / "pyproject.toml").exists()
    }
    assert set(dists) == expected
    for dist in dists.values():
        assert (dist.wheel.parent / f"{dist.name.replace('-', '_')}-{dist.version}.tar.gz").exists()


def test_no_file_is_shipped_by_two_wheels(dists: dict[str, Dist]) -> None:
    owner: dict[str, str] = {}
    clashes = []
    for dist in dists.values():
        for path in dist.files():
            if path in owner:
                clashes.append(f"{path}: {owner[path]} and {dist.name}")
            owner[path] = dist.name
    assert clashes == []
    assert owner["traffik/__init__.py"] == "traffik-core"
    assert owner["traffik/backends/__init__.py"] == "traffik-core"
    assert dists["traffik"].files() == []  # the meta-package ships metadata only


def test_each_distribution_ships_its_own_py_typed_and_version(dists: dict[str, Dist]) -> None:
    for dist in dists.values():
        if dist.name == "traffik":
            continue
        files = dist.files()
        typed = [f for f in files if f.endswith("py.typed")]
        versions = [f for f in files if f.endswith("_version.py")]
        assert len(typed) == 1, (dist.name, typed)
        assert len(versions) == 1, (dist.name, versions)
        assert Path(typed[0]).parent == Path(versions[0]).parent


def test_pins_between_siblings_match_the_versions_in_the_tree(dists: dict[str, Dist]) -> None:
    for dist in dists.values():
        for requirement in dist.requires:
            if ours(dists, requirement.name):
                sibling = dists[canonicalize_name(requirement.name)]
                assert Version(sibling.version) in requirement.specifier, (
                    dist.name,
                    str(requirement),
                )
    meta_extras = set()
    for requirement in dists["traffik"].requires:
        meta_extras |= set(re.findall(r'extra == "([^"]+)"', str(requirement.marker or "")))
    extras = {"redis", "memcached", "fastapi", "websocket", "resilience", "metrics", "testing"}
    assert extras | {"all"} <= meta_extras
    assert Version(dists["traffik"].version) > Version("1.2.2")  # 1.x is on the registry


@pytest.mark.parametrize(
    ("extras", "expected"),
    [
        ({"redis", "fastapi"}, {"traffik-core", "traffik-backend-redis", "traffik-fastapi"}),
        ({"all"}, None),
    ],
    ids=["redis,fastapi", "all"],
)
def test_meta_package_with_extras(
    dists: dict[str, Dist], tmp_path: Path, extras: set[str], expected: set[str] | None
) -> None:
    venv = install_from_build(dists, tmp_path, "traffik", extras)
    found = smoke(venv)
    installed = set(found["dists"])
    # `all` is everything an application runs on; the test kit is an extra of its own.
    wanted = expected if expected is not None else set(dists) - {"traffik", "traffik-testing"}
    assert installed == wanted | {"traffik"}
    for name, version in found["dists"].items():
        assert version == dists[name].version
    assert found["web"] == ["starlette", "fastapi"]


def _alone() -> Iterator[str]:
    for package in sorted(PACKAGES.iterdir()):
        if package.name != "traffik":
            yield package.name


@pytest.mark.parametrize("name", list(_alone()))
def test_each_distribution_alone(dists: dict[str, Dist], tmp_path: Path, name: str) -> None:
    venv = install_from_build(dists, tmp_path, name)
    found = smoke(venv)
    if name in ("traffik-fastapi", "traffik-websocket"):
        assert "starlette" in found["web"]
    else:
        assert found["web"] == [], f"{name} pulled in a web framework"


KIT_USER = """
from traffik import InMemoryBackend
from traffik.testing import CASES, BackendConformance


class TestInMemory(BackendConformance):
    cases = [case for case in CASES if case.id == "token_bucket"]

    async def make_backend(self, clock):
        return InMemoryBackend(clock=clock)
"""


def test_the_testing_kit_runs_from_its_wheel_without_an_asyncio_plugin(
    dists: dict[str, Dist], tmp_path: Path
) -> None:
    venv = install_from_build(dists, tmp_path, "traffik-testing")
    (venv.path / "test_kit_user.py").write_text(KIT_USER)
    result = subprocess.run(
        [str(venv.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_kit_user.py"],
        capture_output=True,
        text=True,
        cwd=venv.path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
