"""The plugin worker: runs one plugin invocation in its own process.

Reads ``{"target": "module:attribute", "arguments": {...}}`` as JSON on stdin and
writes one JSON result on stdout: ``{"status": "ok", "output": ..., "data": {...}}``,
``{"status": "invalid_argument", "message": ..., "argument": ...}`` or
``{"status": "error", "message": ...}``. A crash or a kill leaves no result;
the runner reports that itself.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from typing import Any

from chat_services.plugin.api import PluginArgumentError, PluginOutput, PluginSpec


def load(target: str) -> PluginSpec:
    module_name, _, attribute = target.partition(":")
    spec: object = importlib.import_module(module_name)
    for part in attribute.split("."):
        spec = getattr(spec, part)
    if not isinstance(spec, PluginSpec):
        raise TypeError(f"{target} is not a PluginSpec")
    return spec


def invoke(request: dict[str, Any]) -> dict[str, Any]:
    try:
        spec = load(request["target"])
        result = spec.run(dict(request["arguments"]))
        if not isinstance(result, PluginOutput):
            raise TypeError(f"the plugin returned a {type(result).__name__}, not a PluginOutput")
        return {
            "status": "ok",
            "output": str(result.output),
            "data": {str(k): str(v) for k, v in result.data.items()},
        }
    except PluginArgumentError as error:
        return {"status": "invalid_argument", "message": str(error), "argument": error.argument}
    except Exception as error:
        traceback.print_exc()
        return {"status": "error", "message": f"{type(error).__name__}: {error}"}


def main() -> int:
    request = json.load(sys.stdin)
    result_channel = sys.stdout
    sys.stdout = sys.stderr  # a plugin's print() must not corrupt the result
    result = invoke(request)
    result_channel.write(json.dumps(result))
    result_channel.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
