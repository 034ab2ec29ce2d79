"""Services and their methods: added, removed, and changed request, response or streaming."""

from __future__ import annotations

from google.protobuf import descriptor_pb2 as dpb

from registry.diff.named import matched
from registry.diff.options import decorate
from registry.diff.recorder import Recorder
from registry.diff.schema import At, Def

_STREAMING = {
    (False, False): "unary",
    (True, False): "client streaming",
    (False, True): "server streaming",
    (True, True): "bidirectional streaming",
}


def walk_services(rec: Recorder) -> None:
    """Compare every service of the registry's own files."""
    note = ": its callers get UNIMPLEMENTED"
    for before, after, was, at in matched(
        rec, "service", rec.base.services, rec.head.services, removed_note=note
    ):
        decorate(
            rec, "service", f"service `{after.name}`", was, at, before.proto.options, after.proto.options
        )
        _methods(rec, before, after)


def _methods(
    rec: Recorder, before: Def[dpb.ServiceDescriptorProto], after: Def[dpb.ServiceDescriptorProto]
) -> None:
    b_methods = {m.name: (i, m) for i, m in enumerate(before.proto.method)}
    h_methods = {m.name: (j, m) for j, m in enumerate(after.proto.method)}
    for name, (j, hm) in h_methods.items():
        at = At(f"{after.name}.{name}", after.file, (*after.path, 2, j))
        if name not in b_methods:
            rec.add("method_added", at, "head", f"method `{name}` added to `{after.name}`")
            continue
        i, bm = b_methods[name]
        was = At(f"{before.name}.{name}", before.file, (*before.path, 2, i))
        label = f"method `{name}`"
        for kind, old, new, verb in (
            ("method_input_changed", bm.input_type, hm.input_type, "now takes"),
            ("method_output_changed", bm.output_type, hm.output_type, "now returns"),
        ):
            if rec.base.type_key(old) != rec.head.type_key(new):
                old, new = old.removeprefix("."), new.removeprefix(".")
                rec.add(kind, at, "head", f"{label} {verb} `{new}` instead of `{old}`", old=old, new=new)
        b_stream = _STREAMING[(bm.client_streaming, bm.server_streaming)]
        h_stream = _STREAMING[(hm.client_streaming, hm.server_streaming)]
        if b_stream != h_stream:
            detail = f"{label} changed from {b_stream} to {h_stream}"
            rec.add("method_streaming_changed", at, "head", detail, old=b_stream, new=h_stream)
        decorate(rec, "method", label, was, at, bm.options, hm.options)
    for name, (i, _) in b_methods.items():
        if name not in h_methods:
            at = At(f"{before.name}.{name}", before.file, (*before.path, 2, i))
            detail = f"method `{name}` removed from `{before.name}`: its callers get UNIMPLEMENTED"
            rec.add("method_removed", at, "base", detail)
