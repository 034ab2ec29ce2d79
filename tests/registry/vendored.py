"""Third-party .proto files for scratch schemas: protovalidate's validate.proto and google.api's http rules.

``buf/validate/validate.proto`` is read from the module (``proto/buf/validate/``) once it
is vendored there, else from a local protovalidate 1.1.2 checkout; google/api's files
come from the installed googleapis-common-protos wheel (a dependency of the services).
A test that needs a file that is nowhere is skipped, naming the file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ..conftest import ROOT

VALIDATE = "buf/validate/validate.proto"
_VALIDATE_PLACES = (
    ROOT / "proto" / VALIDATE,
    Path("/tmp/pv/sd/protovalidate-1.1.2/upstream/proto") / VALIDATE,
)


def validate_proto() -> dict[str, str]:
    """{"buf/validate/validate.proto": its text}, for a scratch module's files."""
    for place in _VALIDATE_PLACES:
        if place.is_file():
            return {VALIDATE: place.read_text()}
    pytest.skip(f"{VALIDATE} is neither vendored under proto/ nor in a local protovalidate checkout")


def google_api_protos() -> dict[str, str]:
    """google/api/annotations.proto and http.proto from the installed googleapis-common-protos."""
    spec = importlib.util.find_spec("google.api.annotations_pb2")
    if spec is None or spec.origin is None:
        pytest.skip("googleapis-common-protos is not installed")
    directory = Path(spec.origin).parent
    return {
        f"google/api/{name}": (directory / name).read_text() for name in ("annotations.proto", "http.proto")
    }
