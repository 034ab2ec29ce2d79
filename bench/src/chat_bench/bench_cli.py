"""``chat-bench``: run the benchmark, print the criteria table, write the report and the plot."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from chat_bench import report, scale
from chat_bench.runner import Settings, run

# The services as of main when the benchmark work began: "the previous release's server".
PREVIOUS_SERVICES = "3d6eefafee444ce1cd4bdf87ff261de29ccca7b5"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, run, report; exit 0 whether or not criteria pass (the table says)."""
    parser = argparse.ArgumentParser(prog="chat-bench", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("bench/results"), help="folder for the report")
    parser.add_argument("--quick", action="store_true", help="a smoke run of every step (a minute or two)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds")
    parser.add_argument("--calls", type=int, help="c=1 calls per unary shape, transport and round")
    parser.add_argument("--mixed-seconds", type=float, help="length of the mixed load (default 60)")
    parser.add_argument("--previous-ref", default=PREVIOUS_SERVICES, help="git ref of the previous server")
    parser.add_argument("--repository", type=Path, default=Path.cwd(), help="git checkout holding that ref")
    parser.add_argument("--notes", default="", help="a paragraph for the report (machine load, caveats)")
    parser.add_argument(
        "--scale-seconds", type=float, help="load per method in the past-one-process section (0 skips it)"
    )
    args = parser.parse_args(argv)
    settings = Settings.quick(args.previous_ref) if args.quick else Settings(previous_ref=args.previous_ref)
    overrides = {"rounds": args.rounds, "calls": args.calls, "mixed_seconds": args.mixed_seconds}
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as work:
        results = asyncio.run(run(settings, Path(work), args.repository))
    args.output.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y-%m-%d", time.gmtime(results.started)) + ("-quick" if args.quick else "")
    plot_path = args.output / f"{stem}.png"
    report.plot(results, plot_path)
    markdown = report.markdown(results, plot_path.name, args.notes)
    scale_seconds = args.scale_seconds if args.scale_seconds is not None else (3.0 if args.quick else 10.0)
    scale_section = scale.report_section(scale_seconds) if scale_seconds > 0 else ""
    markdown += "\n" + scale_section if scale_section else ""
    (args.output / f"{stem}.md").write_text(markdown, encoding="utf-8")
    print(report.criteria_table(results))
    print()
    print(report.shapes_table(results))
    print("\n" + scale_section if scale_section else "", end="")
    print(f"\nreport: {args.output / f'{stem}.md'}, plot: {plot_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
