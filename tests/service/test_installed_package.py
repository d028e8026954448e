"""Installed, it runs: the wheel `python -m build` makes (from the sdist it makes first), installed into a fresh
virtualenv outside the checkout, serves with `host-runner serve` started in another directory, and runs a task to
`success` through the installed CLI (issue 23).

Offline and quick: the wheel is built with `--no-isolation` (setuptools and build come from requirements.txt) and
installed with `--no-index --no-deps` by this interpreter's pip; the fresh venv sees this venv's dependencies through
a `.pth` file naming a directory of links to them, without the service's own packages (host_runner, actors, api),
so that the service it runs can only be the wheel's.
"""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest
import requests
from packaging.requirements import Requirement

from host_runner import __version__
from support.paths import REPO
from support.service import free_port
from support.waiting import wait_for

pytestmark = pytest.mark.slow

#: The service's own top-level packages: in the wheel, and never visible to the fresh venv from anywhere else.
OWN = ("host_runner", "actors", "api")
#: What the service needs besides Python modules.
DATA_FILES = ("host_runner/run/wrapper.c", "api/ui/index.html", "api/ui/app.js", "api/ui/app.css")
#: Not part of the source the package is built from (a developer's checkout may hold them).
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".host-runner", ".test-artifacts", "build", "dist",
                                    "*.egg-info")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    sdist: Path
    bin: Path  # the fresh venv's bin/, with the host-runner script


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def link_dependencies(into: Path) -> Path:
    """A directory of links to everything this interpreter has installed but the service itself (and .pth files,
    which only site directories run)."""
    into.mkdir()
    sites = {Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")}
    for site in sites:
        for entry in site.iterdir():
            own = entry.name in OWN or entry.name.lower().startswith(("host_runner-", "host_runner.", "__editable__"))
            if not own and entry.suffix != ".pth" and not (into / entry.name).exists():
                (into / entry.name).symlink_to(entry)
    return into


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that would point the installed service at the checkout or configure it."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("HOST_RUNNER_") and key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("package")
    source = work / "source"  # a copy: building writes build/ and *.egg-info into the source tree
    shutil.copytree(REPO, source, ignore=NOT_SOURCE, symlinks=True)
    dist = work / "dist"
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)], cwd=work)
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work)
    venv_python = venv / "bin" / "python"
    site = Path(run([str(venv_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=work, env=clean_env()).stdout.strip())
    (site / "test-dependencies.pth").write_text(f"{link_dependencies(work / 'dependencies')}\n")
    run([sys.executable, "-m", "pip", "--python", str(venv_python), "install", "--no-index", "--no-deps",
         "--disable-pip-version-check", str(wheel)], cwd=work, env=clean_env())
    return Installed(wheel, sdist, venv / "bin")


def test_the_wheel_holds_the_service_and_its_files(installed: Installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        info = f"host_runner-{__version__}.dist-info"
        metadata = email.parser.Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert {f"{package}/__init__.py" for package in OWN} <= names
    assert {"api/gunicorn_settings.py", "api/serve.py", *DATA_FILES} <= names
    assert not [name for name in names if name.split("/")[0] not in (*OWN, info)], "only the service's packages"
    assert "host-runner = host_runner.client.cli:run" in entry_points
    assert metadata["Version"] == __version__
    # The wheel was built from the sdist: the sdist holds the data files too.
    with tarfile.open(installed.sdist) as sdist:
        assert {f"host_runner-{__version__}/{name}" for name in DATA_FILES} <= set(sdist.getnames())
    # What the wheel asks for is what pyproject.toml says, and what the fresh venv gets here satisfies it.
    required = [Requirement(text) for text in metadata.get_all("Requires-Dist") or []]
    runtime = [requirement for requirement in required if requirement.marker is None]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert sorted(map(str, runtime)) == sorted(str(Requirement(text)) for text in project["dependencies"])
    for requirement in runtime:
        assert requirement.specifier.contains(version(requirement.name)), f"{requirement} vs {version(requirement.name)}"


def test_installed_host_runner_serves_from_another_directory(installed: Installed, tmp_path: Path):
    # Started where an unrelated `api` package lies (a project of the operator's): the service must still be its own.
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "api").mkdir(parents=True)
    (elsewhere / "api" / "__init__.py").write_text("raise ImportError('not the runner api package')\n")
    cli = str(installed.bin / "host-runner")
    env = clean_env(HOST_RUNNER_EXECUTOR="shell",
                    HOST_RUNNER_CMD_TEMPLATE="sh -c 'echo \"installed: $HOST_RUNNER_PROMPT\"'")

    answer = run([cli, "--version"], cwd=elsewhere, env=env)
    assert answer.stdout.strip() == f"host-runner {__version__}"

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([cli, "serve", "--bind", f"127.0.0.1:{port}"], cwd=elsewhere, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_healthy(process, url, log_path)
        # The console script replaced itself with the venv's interpreter running the package's service module.
        command = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[:-1]
        assert [part.decode() for part in command] == [str(installed.bin / "python"), "-P", "-m", "api.serve"]

        # The global options after the command (and before it), through the installed CLI.
        submitted = run([cli, "submit", "--url", url, "--json", "--task-id", "inst-1", "--prompt", "hello", "--wait",
                         "--interval", "0.1"], cwd=elsewhere, env=env)
        record = json.loads(submitted.stdout)
        assert record["status"] == "success" and record["stdout"] == "installed: hello\n", submitted.stderr
        status = run([cli, "--url", url, "status", "inst-1", "--json"], cwd=elsewhere, env=env)
        assert json.loads(status.stdout)["exit_code"] == 0

        # The dashboard's files came with the package.
        for path in ("/", "/ui/app.js", "/ui/app.css"):
            assert requests.get(f"{url}{path}", timeout=10).status_code == 200, path
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    log_text = log_path.read_text()
    assert code == 0, log_text
    assert "host-runner stopped" in log_text  # worker_exit stopped the actors
    data_dir = elsewhere / ".host-runner"  # the default data directory, relative to where serve was started
    assert (data_dir / "host_runner.db").exists()
    if shutil.which("cc"):  # the native wrapper was built from the wheel's wrapper.c, as from a checkout
        assert list((data_dir / "bin").glob("wrapper-*")), log_text
        assert "task wrapper: " + str(data_dir / "bin" / "wrapper-") in log_text


def wait_until_healthy(process: subprocess.Popen, url: str, log_path: Path) -> None:
    """Wait until the service answers /health; fail with its log if it exits first."""
    def healthy() -> bool:
        try:
            return requests.get(f"{url}/health", timeout=1).ok
        except requests.RequestException:
            assert process.poll() is None, log_path.read_text()
            return False

    wait_for(healthy, timeout=60, what="the installed host-runner serve to answer")
