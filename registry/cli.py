"""The ``python -m registry`` command line: one sub-command per repository task."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from registry.buf import BufError
from registry.codegen import DriftKind, find_drift, generate
from registry.layout import RepoLayout, find_root


def _generate(layout: RepoLayout, args: argparse.Namespace) -> int:
    if not args.check:
        generate(layout)
        print(f"generated: {', '.join(str(p.relative_to(layout.root)) for p in layout.generated)}")
        return 0
    drift = find_drift(layout)
    if not drift:
        print("generated code matches `buf generate` and `buf build` output")
        return 0
    print("generated code differs from what buf writes:", file=sys.stderr)
    for item in drift:
        print(f"  {item}", file=sys.stderr)
    if all(item.kind is DriftKind.UNCOMMITTED for item in drift):
        print("the files match buf but are not committed yet: `git add` them", file=sys.stderr)
    else:
        print("run `nox -s generate` and commit the result", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, exposed for tests and for ``--help`` output."""
    parser = argparse.ArgumentParser(prog="python -m registry", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="regenerate the SDK targets and the schema image")
    gen.add_argument(
        "--check",
        action="store_true",
        help="write nothing; fail, listing the files, when the tree differs from buf's output",
    )
    gen.set_defaults(handler=_generate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the chosen command, and return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        layout = RepoLayout(find_root())
        code: int = args.handler(layout, args)
    except (BufError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return code
