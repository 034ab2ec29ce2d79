"""The images' install steps, run as deploy/image/install.sh runs them in the Containerfile.

No container engine runs here in CI (see services/README.md, "Deploying on Kubernetes",
for the buildah build that works on this machine by hand): the script itself runs into
a fresh directory, cached by the digest of what it installs, and the Containerfile is
held to the rules the image must keep.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..venvs import cached, environment_digest
from .manifests import KUBERNETES, render, workloads

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "deploy" / "image"
INSTALL = IMAGE / "install.sh"
CONTAINERFILE = IMAGE / "Containerfile"
IMAGE_USER = 10001


def sdk_wheel() -> Path:
    """The wheel `nox -s tests` built, as `nox -s build` writes it into dist/."""
    given = os.environ.get("CHAT_SDK_WHEEL")
    wheel = Path(given) if given else next((ROOT / "dist").glob("chatplatform_schema_sdk-*.whl"), None)
    if wheel is None or not wheel.is_file():
        pytest.skip("no SDK wheel in dist/: run `nox -s build` (nox -s tests builds it)")
    return wheel


def installed(project: str) -> Path:
    """The environment install.sh makes for ``project`` (services or gateway), made once per digest."""
    wheel = sdk_wheel()
    skipped = {"__pycache__", "build", "dist"}
    sources = sorted(
        path
        for path in (ROOT / project).rglob("*")
        if path.is_file()
        and not any(part in skipped or part.endswith(".egg-info") for part in path.relative_to(ROOT).parts)
    )
    digest = environment_digest([project], [INSTALL, wheel, *sources])

    def make(directory: Path) -> None:
        subprocess.run(
            ["sh", str(INSTALL), str(directory / "venv"), str(wheel), str(ROOT / project)], check=True
        )

    return cached(f"image-{project}", digest, make) / "venv"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("project", "serve", "listening", "image_port"),
    [
        (
            "services",
            ["chat-services", "serve", "--port", "0"],
            r"serving address=127\.0\.0\.1:(\d+)",
            "50051",
        ),
        ("gateway", ["chat-gateway", "serve", "--port", "0"], r"^port (\d+)$", "8080"),
    ],
)
def test_each_environment_serves_and_passes_its_image_health_check(
    project: str, serve: list[str], listening: str, image_port: str, tmp_path: Path
) -> None:
    venv = installed(project)
    server = subprocess.Popen(
        [str(venv / "bin" / serve[0]), *serve[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,  # the services' SQLite file lands here
        env={**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"},
    )
    try:
        assert server.stdout is not None
        port = None
        for line in server.stdout:
            match = re.search(listening, line.strip())
            if match:
                port = match.group(1)
                break
        assert port is not None, f"{serve[0]} never said it listens (exit {server.wait(10)})"
        check = [arg.replace(image_port, port) for arg in healthcheck(project)]
        probe = subprocess.run(
            [str(venv / "bin" / check[0]), *check[1:]], capture_output=True, text=True, timeout=60
        )
        assert probe.returncode == 0, probe.stdout + probe.stderr
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
        gone = subprocess.run([str(venv / "bin" / check[0]), *check[1:]], capture_output=True, timeout=60)
        assert gone.returncode != 0, "the health check passes with nothing listening"
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize(("project", "command"), [("services", "chat-services"), ("gateway", "chat-gateway")])
def test_the_environment_holds_the_program_and_no_installer(project: str, command: str) -> None:
    venv = installed(project)
    assert (
        subprocess.run([str(venv / "bin" / command), "--help"], capture_output=True, timeout=60).returncode
        == 0
    )
    assert not (venv / "bin" / "pip").exists()
    no_pip = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import pip"], capture_output=True, timeout=60
    )
    assert no_pip.returncode != 0


# Prints every distribution in the environment it runs in, by normalized name, with its version.
DISTRIBUTIONS = (
    "import importlib.metadata as m, json, re; print(json.dumps("
    "{re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version for d in m.distributions()}))"
)


@pytest.mark.slow
@pytest.mark.parametrize("project", ["services", "gateway"])
def test_the_environment_holds_every_dependency_the_project_declares(project: str) -> None:
    """The image installs what pyproject.toml declares (a new driver comes with it), not a list of its own."""
    declared = tomllib.loads((ROOT / project / "pyproject.toml").read_text())["project"]["dependencies"]
    assert unmet(declared, distributions(installed(project))) == []


def distributions(venv: Path) -> dict[str, str]:
    """Every distribution in ``venv``, by normalized name, with its version."""
    listing = subprocess.run(
        [str(venv / "bin" / "python"), "-c", DISTRIBUTIONS],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(listing.stdout))


def unmet(declared: list[str], versions: dict[str, str]) -> list[str]:
    """The requirements (for this interpreter) that ``versions``, by normalized name, do not meet."""
    found = []
    for requirement in map(Requirement, declared):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = versions.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            found.append(f"{requirement} (installed: {version})")
    return found


def test_a_declared_dependency_the_environment_lacks_is_unmet() -> None:
    versions = {"grpclib": "0.4.9", "numpy": "2.3.1"}
    assert unmet(["grpclib>=0.4.9,<0.5", "numpy>=2.2,<3"], versions) == []
    assert unmet(["psycopg[binary]>=3.3,<3.4", "grpclib>=0.5"], versions) == [
        "psycopg[binary]<3.4,>=3.3 (installed: None)",
        "grpclib>=0.5 (installed: 0.4.9)",
    ]


@pytest.mark.slow
def test_a_postgresql_driver_in_the_image_brings_its_own_libpq() -> None:
    """The slim base has no libpq: psycopg must load the libpq its binary wheel bundles."""
    venv = installed("services")
    if "psycopg" not in distributions(venv):
        pytest.skip("the services do not depend on psycopg")
    implementation = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import psycopg; print(psycopg.pq.__impl__)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    # "python" and "c" load the system's libpq.so, which python:3.11-slim does not have.
    assert implementation.stdout.strip() == "binary", "declare psycopg[binary] (or add libpq5 to the image)"


def test_the_install_script_refuses_to_run_without_the_wheel(tmp_path: Path) -> None:
    result = subprocess.run(
        ["sh", str(INSTALL), str(tmp_path / "venv"), str(tmp_path / "missing.whl"), str(ROOT / "services")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "nox -s build" in result.stderr
    assert not (tmp_path / "venv").exists()


def stages() -> dict[str, list[tuple[str, str]]]:
    """The Containerfile's instructions by stage name, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", CONTAINERFILE.read_text())
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "FROM":
            current = found.setdefault(rest.split(" AS ")[-1], [])
        current.append((instruction, rest))
    return found


def healthcheck(stage: str) -> list[str]:
    """The HEALTHCHECK command of a final stage, as an argument list."""
    [check] = [rest for instruction, rest in stages()[stage] if instruction == "HEALTHCHECK"]
    command = check.split(" CMD ", 1)[1]
    return [str(arg) for arg in json.loads(command)]


def test_the_build_stage_installs_with_the_tested_script() -> None:
    runs = [rest for instruction, rest in stages()["build"] if instruction == "RUN"]
    copies = [rest for instruction, rest in stages()["build"] if instruction == "COPY"]
    assert "deploy/image/install.sh /build/install.sh" in copies
    assert runs, "the build stage installs something"
    for run in runs:
        for command in run.split("&&"):
            assert shlex.split(command)[:2] == ["sh", "/build/install.sh"], (
                f"install steps outside install.sh: {run}"
            )


@pytest.mark.parametrize("stage", ["services", "gateway"])
def test_final_stages_run_unprivileged_with_only_the_built_environment(stage: str) -> None:
    instructions = stages()[stage]
    [user] = [rest for instruction, rest in instructions if instruction == "USER"]
    assert user == f"{IMAGE_USER}:{IMAGE_USER}"
    assert not [rest for instruction, rest in instructions if instruction in ("RUN", "ADD")]
    copies = [rest for instruction, rest in instructions if instruction == "COPY"]
    assert copies == [f"--from=build /opt/chat-{stage} /opt/chat-{stage}"]
    runtime = [rest for instruction, rest in stages()["runtime"] if instruction == "RUN"]
    assert all("install" not in run.replace("useradd", "") for run in runtime), (
        "the runtime stage installs nothing"
    )


def test_the_build_context_holds_exactly_what_the_containerfile_copies() -> None:
    ignore = (IMAGE / "Containerfile.dockerignore").read_text().splitlines()
    allowed = {line.removeprefix("!") for line in ignore if line.startswith("!")}
    copied = {rest.split()[0] for instruction, rest in stages()["build"] if instruction == "COPY"}
    assert allowed == copied
    assert "*" in ignore  # everything else stays out (.nox, node_modules, var/)


def test_the_services_image_health_check_is_the_grpc_health_command() -> None:
    check = healthcheck("services")
    assert check[:2] == ["chat-services", "health"]


def test_the_manifests_run_as_the_image_user() -> None:
    for workload in workloads(render(KUBERNETES / "overlays" / "production")):
        assert workload.pod["securityContext"]["runAsUser"] == IMAGE_USER
        assert workload.pod["securityContext"]["runAsGroup"] == IMAGE_USER


def test_the_containerfile_base_is_the_python_the_wheel_was_built_for() -> None:
    [base] = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", CONTAINERFILE.read_text(), flags=re.M)
    assert f"python:{sys.version_info.major}.{sys.version_info.minor}-" in base
