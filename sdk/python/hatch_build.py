"""Compile the dataclass target's C codec (``chat_sdk._fastwire``) into the wheel.

setuptools' ``build_ext`` does the compiling, with the interpreter's own compiler and
flags; the wheel is then tagged for this interpreter and platform. A machine with no
C compiler fails the build with the compiler's message and a hint: set
``CHAT_SDK_PURE_PYTHON=1`` to build a pure-Python wheel instead, which serves every
message through the slower Python path over upb (``chat_sdk._wire``). Editable
installs never compile.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

EXTENSION = "chat_sdk._fastwire"
SOURCE = Path("src") / "chat_sdk" / "_fastwire.c"


class NativeCodecHook(BuildHookInterface):  # type: ignore[type-arg]
    """Adds the compiled extension to the wheel and marks the wheel platform-specific."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        if os.environ.get("CHAT_SDK_PURE_PYTHON") == "1":
            self.app.display_warning("CHAT_SDK_PURE_PYTHON=1: a wheel without the C codec")
            return
        self._scratch = Path(tempfile.mkdtemp(prefix="chat-sdk-native-"))
        try:
            built = self._compile(self._scratch)
        except Exception as error:  # setuptools' CompileError, LinkError, a missing compiler...
            raise RuntimeError(
                f"compiling the SDK's C codec ({SOURCE}) failed: {error}. Install a C compiler and"
                " the Python headers, or set CHAT_SDK_PURE_PYTHON=1 to build a pure-Python wheel"
                " (same results, slower dataclass encoding and parsing)."
            ) from error
        build_data["force_include"][str(built)] = f"chat_sdk/{built.name}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    def _compile(self, scratch: Path) -> Path:
        from setuptools import Distribution, Extension
        from setuptools.command.build_ext import build_ext

        extension = Extension(
            EXTENSION,
            [str(Path(self.root) / SOURCE)],
            extra_compile_args=[] if os.name == "nt" else ["-O2", "-std=c11"],
        )
        command = build_ext(Distribution({"name": "chatplatform-schema-sdk", "ext_modules": [extension]}))
        command.build_lib = str(scratch)
        command.build_temp = str(scratch / "objects")
        command.ensure_finalized()
        command.run()
        return Path(command.get_ext_fullpath(EXTENSION))
