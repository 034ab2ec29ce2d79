"""The ``python -m registry`` command line: one sub-command per repository task."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from registry.assess import assess
from registry.buf import BufError
from registry.codegen import DriftKind, find_drift, generate
from registry.layout import RepoLayout, find_root
from registry.lint import format_diff, lint_findings, unformatted_files
from registry.release import ReleaseRefused, cut_release
from registry.remedies import changes_to_fix, github_annotation
from registry.rules_doc import render_rules
from registry.waivers import WaiverError


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


def _lint(layout: RepoLayout, args: argparse.Namespace) -> int:
    findings = lint_findings(layout)
    for finding in findings:
        print(finding, file=sys.stderr)
    diff = format_diff(layout)
    if diff:
        print(diff, file=sys.stderr)
        for path in unformatted_files(diff):
            print(f"{path}: not formatted: run `buf format -w`", file=sys.stderr)
    if findings or diff:
        return 1
    print("schema lint clean: buf lint (STANDARD, COMMENTS) and buf format")
    return 0


def _breaking(layout: RepoLayout, args: argparse.Namespace) -> int:
    review = assess(layout, args.base)
    for check in review.breaking:
        status = "passed" if check.passed else f"FAILED, {len(check.findings)} finding(s)"
        print(f"{check.rules} against {check.label}: {status}")
        for finding, reason in check.permitted:
            print(f"  permitted: {finding.path}:{finding.line}: {finding.rule}: {reason}")
        for finding, waiver in check.waived:
            print(f"  waived: {finding.path}:{finding.line}: {finding.rule}: {waiver.reason}")
    to_fix = changes_to_fix(review.breaking)
    if to_fix:
        print(f"{len(to_fix)} change(s) to fix, each once with every check it fails:")
    for item in to_fix:
        print(github_annotation(item) if args.error_format == "github-actions" else f"  {item}")
    if not review.breaking:
        print("no release and no base to compare with: nothing to check")
    return 0 if all(check.passed for check in review.breaking) else 1


def _review(layout: RepoLayout, args: argparse.Namespace) -> int:
    review = assess(layout, args.base)
    if args.format == "json":
        text = json.dumps(review.to_json(), indent=2) + "\n"
    elif args.format == "summary":
        text = review.summary() + "\n"
    else:
        text = review.to_markdown()
    if args.output:
        Path(args.output).write_text(text)
        print(review.summary())
        print(f"report written to {args.output}")
    else:
        sys.stdout.write(text)
    return 0 if review.passed or not args.strict else 1


def _release(layout: RepoLayout, args: argparse.Namespace) -> int:
    try:
        plan = cut_release(layout, args.version, date=args.date)
    except ReleaseRefused as refusal:
        print(f"release refused: {refusal}", file=sys.stderr)
        return 1
    since = f"{len(plan.changes)} change(s) since {plan.previous}" if plan.previous else "the first release"
    print(f"released {plan.version} ({plan.bump.value}: {since})")
    print(f"wrote releases/{plan.version}/, CHANGELOG.md and the SDK version; commit them")
    return 0


def _rules(layout: RepoLayout, args: argparse.Namespace) -> int:
    text = render_rules()
    path = layout.review_rules
    shown = path.relative_to(layout.root)
    if args.write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {shown}")
        return 0
    if args.check:
        if path.is_file() and path.read_text() == text:
            print(f"{shown} matches the rules in registry/diff/")
            return 0
        print(
            f"{shown} differs from the rules in registry/diff/: run `python -m registry rules --write`",
            file=sys.stderr,
        )
        return 1
    sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, exposed for tests and for ``--help`` output."""
    parser = argparse.ArgumentParser(prog="python -m registry", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="regenerate the SDK targets, schema image and SDK version")
    gen.add_argument(
        "--check",
        action="store_true",
        help="write nothing; fail, listing the files, when the tree differs from buf's output",
    )
    gen.set_defaults(handler=_generate)

    lint = commands.add_parser("lint", help="buf lint and buf format, findings as file:line:column: RULE")
    lint.set_defaults(handler=_lint)

    base_help = (
        "a git ref, a release version or a directory (default: the PR's base, main, or the last release)"
    )
    breaking = commands.add_parser("breaking", help="WIRE_JSON against every release, FILE against the base")
    breaking.add_argument("--base", help=base_help)
    breaking.add_argument("--error-format", choices=["text", "github-actions"], default="text")
    breaking.set_defaults(handler=_breaking)

    review = commands.add_parser("review", help="the review report of the working schema against a base")
    review.add_argument("--base", help=base_help)
    review.add_argument("--format", choices=["markdown", "json", "summary"], default="markdown")
    review.add_argument("--output", help="write the report to this file and print its summary")
    review.add_argument("--strict", action="store_true", help="exit 1 when lint or a breaking check fails")
    review.set_defaults(handler=_review)

    rules = commands.add_parser("rules", help="the review engine's rules table (docs/review-rules.md)")
    mode = rules.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write docs/review-rules.md")
    mode.add_argument("--check", action="store_true", help="fail when docs/review-rules.md is out of date")
    rules.set_defaults(handler=_rules)

    release = commands.add_parser("release", help="cut a release of the working schema")
    release.add_argument("version", help="MAJOR.MINOR.PATCH; must match the bump the changes require")
    release.add_argument("--date", help="release date, YYYY-MM-DD (default: today)")
    release.set_defaults(handler=_release)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the chosen command, and return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        layout = RepoLayout(find_root())
        code: int = args.handler(layout, args)
    except (BufError, FileNotFoundError, WaiverError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return code
