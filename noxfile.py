"""Every task of the schema registry, one short session each: `nox -l` lists them.

`nox -s check` is the job a schema pull request runs; `nox -s tests` runs the suite.
Sessions install what they need from PyPI (buf from the `buf-bin` wheel) and reuse
their virtual environments, so a second run is fast.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).parent
SDK_DIR = ROOT / "sdk" / "python"
SERVICES_DIR = ROOT / "services"
GATEWAY_DIR = ROOT / "gateway"
DIST_DIR = ROOT / "dist"

# Tools that generate or judge code are pinned: another version writes other code.
BUF = "buf-bin==1.75.0"
RUFF = "ruff==0.17.6"
GENERATORS = (
    BUF,
    RUFF,  # betterproto2's compiler formats its output with ruff and our ruff settings
    "betterproto2-compiler==0.10.1",  # same major.minor as the SDK's betterproto2==0.10.0
    "grpcio-tools==1.85.1",  # its bundled protoc runs `protoc_builtin: python`
    "mypy-protobuf==5.1.0",
    "grpclib==0.4.9",  # protoc-gen-grpclib_python
)
PYTEST = "pytest==9.2.0"
# mypy reads the tests too, so it needs pytest and nox beside the type stubs.
HYPOTHESIS = "hypothesis==6.170.17"
LINTERS = (
    RUFF,
    "mypy==2.4.1",
    "types-protobuf==7.35.1.20260906",
    "nox",
    PYTEST,
    "pytest-asyncio==1.5.0",
    HYPOTHESIS,
)
BUILD = "build==1.6.1"
PYTEST_ASYNCIO = "pytest-asyncio==1.5.0"
# The official stack, as an independent second client of the services.
INTEROP = ("grpcio==1.85.3", "grpcio-health-checking==1.85.1", "grpcio-reflection==1.85.1")
# hatchling builds release wheels without isolation in the compatibility suite.
TEST_TOOLS = (PYTEST, PYTEST_ASYNCIO, BUILD, "hatchling==1.33.0", HYPOTHESIS, *INTEROP)
# The gateway's tests: an HTTP, SSE and WebSocket client, and a browser driver that
# runs the system Chromium (never a browser it downloads itself).
GATEWAY_TEST_TOOLS = (
    "httpx==0.28.1",
    "httpx-sse==0.4.3",
    "playwright==1.65.2",
    "openapi-spec-validator==0.9.0",
)

nox.options.sessions = ["check", "tests"]
nox.options.reuse_venv = "yes"


def install_tooling(session: nox.Session) -> None:
    """Install buf and the repository's tooling package (`python -m registry`)."""
    session.install(BUF, "-e", str(ROOT))


def install_generators(session: nox.Session) -> None:
    """Install the tooling and every code generator plugin buf.gen.yaml names."""
    session.install(*GENERATORS)
    install_tooling(session)


def base_args(posargs: list[str]) -> list[str]:
    """The `--base REF` pair of a session's arguments, if any, for commands that take only that."""
    if "--base" in posargs:
        index = posargs.index("--base")
        return posargs[index : index + 2]
    return [arg for arg in posargs if arg.startswith("--base=")]


def build_sdk(session: nox.Session) -> Path:
    """Build the SDK wheel and sdist into dist/ and return the wheel's path."""
    session.install(BUILD)
    shutil.rmtree(DIST_DIR, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", str(DIST_DIR), str(SDK_DIR), silent=True)
    (wheel,) = DIST_DIR.glob("chat_sdk-*.whl")
    (sdist,) = DIST_DIR.glob("chat_sdk-*.tar.gz")
    session.log(f"built {wheel.relative_to(ROOT)} and {sdist.relative_to(ROOT)}")
    return wheel


def run_lint(session: nox.Session) -> None:
    """buf lint, buf format, ruff and mypy, each failing the session on a finding."""
    session.run("python", "-m", "registry", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def lint(session: nox.Session) -> None:
    """Lint the schema (buf lint, buf format) and the Python code (ruff, mypy --strict)."""
    session.install(
        BUF, *LINTERS, *GATEWAY_TEST_TOOLS, "-e", str(SDK_DIR), "-e", str(SERVICES_DIR), "-e", str(ROOT)
    )
    session.install("-e", str(GATEWAY_DIR))
    run_lint(session)


@nox.session
def generate(session: nox.Session) -> None:
    """Regenerate the SDK and schema image; `-- --check` fails, listing files, on drift."""
    install_generators(session)
    session.run("python", "-m", "registry", "generate", *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """Build the chat-sdk wheel and sdist into dist/."""
    build_sdk(session)


@nox.session
def breaking(session: nox.Session) -> None:
    """WIRE_JSON against each release, FILE against the base (`-- --base REF`)."""
    install_tooling(session)
    session.run("python", "-m", "registry", "breaking", *session.posargs)


@nox.session
def review(session: nox.Session) -> None:
    """The review report of the working schema; `-- --base REF --format json --output FILE`."""
    install_tooling(session)
    session.run("python", "-m", "registry", "review", *session.posargs)


@nox.session
def release(session: nox.Session) -> None:
    """Cut a release: `nox -s release -- 1.1.0` (refused unless checks pass and the version fits)."""
    if not session.posargs:
        session.error("name the version: nox -s release -- X.Y.Z")
    install_generators(session)
    session.run("python", "-m", "registry", "release", *session.posargs)


@nox.session
def check(session: nox.Session) -> None:
    """The schema pull request job: lint, drift, breaking checks, build, and the review summary.

    Arguments go to the breaking check: `nox -s check -- --base origin/main --error-format github-actions`.
    """
    install_generators(session)
    session.install(*LINTERS, *GATEWAY_TEST_TOOLS, "-e", str(SDK_DIR), "-e", str(SERVICES_DIR))
    session.install("-e", str(GATEWAY_DIR))
    done: list[str] = []
    run_lint(session)
    done.append("lint: buf lint, buf format, ruff check, ruff format, mypy --strict")
    session.run("python", "-m", "registry", "generate", "--check")
    done.append("generate --check: committed SDK code, schema image and SDK version match buf's output")
    session.run("python", "-m", "registry", "breaking", *session.posargs)
    done.append("breaking: WIRE_JSON against every release, FILE against the base")
    wheel = build_sdk(session)
    done.append(f"build: {wheel.name} and its sdist in dist/")
    report = DIST_DIR / "schema-review.md"
    session.run("python", "-m", "registry", "review", *base_args(session.posargs), "--output", str(report))
    done.append(f"review: the full report is in {report.relative_to(ROOT)}")
    session.log("check passed:\n  " + "\n  ".join(done))


@nox.session
def tests(session: nox.Session) -> None:
    """Build the SDK wheel, install it (never the source tree), and run every test, compat_tests included."""
    install_generators(session)
    session.install(*TEST_TOOLS, *GATEWAY_TEST_TOOLS)
    ensure_chromium(session)
    wheel = install_sdk_and_services(session)
    session.run("pytest", *session.posargs, env={"CHAT_SDK_WHEEL": str(wheel)})


def install_sdk_and_services(session: nox.Session) -> Path:
    """Build and install the SDK wheel, then the services on top of it (never the source tree)."""
    wheel = build_sdk(session)
    session.install(str(wheel))
    # Same version, new build: replace whatever an earlier run installed.
    session.install("--force-reinstall", "--no-deps", str(wheel))
    session.install(str(SERVICES_DIR))
    session.install("--force-reinstall", "--no-deps", str(SERVICES_DIR))
    session.install(str(GATEWAY_DIR))
    session.install("--force-reinstall", "--no-deps", str(GATEWAY_DIR))
    return wheel


@nox.session
def compat(session: nox.Session) -> None:
    """Every release against today's SDK and services; prints the compatibility matrix."""
    install_generators(session)
    session.install(*TEST_TOOLS)
    wheel = install_sdk_and_services(session)
    session.run("pytest", "compat_tests", *session.posargs, env={"CHAT_SDK_WHEEL": str(wheel)})


@nox.session
def serve(session: nox.Session) -> None:
    """Serve every chat.v1 service on 127.0.0.1:50051 (SQLite in var/); flags after `--`."""
    install_sdk_and_services(session)
    args = session.posargs or ["--port", "50051"]
    if not any(arg.startswith("--database") for arg in args):
        args = [*args, "--database", str(ROOT / "var" / "chat-services.db")]
    session.run("chat-services", "serve", *args)


def ensure_chromium(session: nox.Session) -> None:
    """Install Debian's Chromium (`apt-get install -y chromium`, as root) when it is missing."""
    if shutil.which("chromium"):
        return
    session.run("apt-get", "update", "-qq", external=True)
    session.run(
        "apt-get",
        "install",
        "-y",
        "-qq",
        "chromium",
        external=True,
        env={"DEBIAN_FRONTEND": "noninteractive"},
    )


@nox.session
def gateway(session: nox.Session) -> None:
    """The REST/GraphQL gateway on 127.0.0.1:8080 in front of chat-services at 127.0.0.1:50051.

    `-- --with-services` also starts chat-services (SQLite in var/) for development;
    other flags go to `chat-gateway serve` (`-- --port 9000 --cors-origin http://localhost:3000`).
    """
    install_sdk_and_services(session)
    args = list(session.posargs)
    if "--with-services" in args:
        args.remove("--with-services")
        session.run("python", "-m", "chat_gateway.dev", *args)
    else:
        session.run("chat-gateway", "serve", *args)


@nox.session
def openapi(session: nox.Session) -> None:
    """Write gateway/openapi.json from the schema; `-- --check` fails when the committed copy drifts."""
    install_sdk_and_services(session)
    session.run("chat-gateway", "openapi", "--output", str(GATEWAY_DIR / "openapi.json"), *session.posargs)
