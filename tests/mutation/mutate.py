"""Run mutmut on each mutation target of pyproject.toml, one target at a time, and report.

Each ``[[tool.chat-mutation.target]]`` names the modules mutated together and the only
tests run against them, so a mutant costs seconds, not a suite. mutmut 3 derives a
module's import name from its path below the working directory (``src/`` stripped),
so every target runs in a scratch workspace under ``.nox/mutate/<target>`` where the
SDK, the services, the gateway and the benchmark sit at ``src/<package>``: their mutants
then shadow the installed wheels. The verdicts are summed per module, every surviving
mutant is printed with its diff. Each finished target's verdicts are kept in
``tests/mutation/results/<target>.json`` (committed, with a fingerprint of the files it
mutated and the tests it ran), and ``docs/mutation-report.md`` is written from all of them:
a run of one target updates its part of the report, and a target whose modules or tests
changed since its run is named as such. A survivor not listed with a reason in
``tests/mutation/equivalent.toml`` fails the run, as does a target without a result.

Usage: ``python tests/mutation/mutate.py [TARGET ...]`` (``nox -s mutate -- TARGET``);
``--report`` writes the report from the kept results without running anything.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".nox" / "mutate"
REPORT = ROOT / "docs" / "mutation-report.md"
EQUIVALENT = ROOT / "tests" / "mutation" / "equivalent.toml"
RESULTS = ROOT / "tests" / "mutation" / "results"
# Where a package's source lives in the repository, and where mutmut must see it.
RELOCATED = {
    "sdk/python/src/chat_sdk/": "src/chat_sdk/",
    "services/src/chat_services/": "src/chat_services/",
    "gateway/src/chat_gateway/": "src/chat_gateway/",
    "bench/src/chat_bench/": "src/chat_bench/",
}
# mutmut's exit codes, by meaning (mutmut.stats.status_by_exit_code).
KILLED = {1, 3, 36, 24, -24, 152, 255}  # a failing test, or a timeout: the mutant was noticed
SURVIVED = {0}
NO_TESTS = {5, 33}  # no selected test runs the mutated function: counted, never killed
TARGET_FLOOR = 0.90


@dataclass(frozen=True)
class Target:
    """Modules mutated together, and the tests that must notice their mutants."""

    name: str
    mutate: tuple[str, ...]
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()  # mutmut name patterns in scope; empty: every function

    def in_scope(self, mutant: str) -> bool:
        """Whether ``mutant`` is one this target runs."""
        return not self.functions or any(fnmatch.fnmatch(mutant, pattern) for pattern in self.functions)

    def fingerprint(self) -> dict[str, str]:
        """SHA-256 of each file the target mutates or tests with (repository-relative paths)."""
        return {path: _sha256(ROOT / path) for path in sorted({*self.mutate, *self.tests})}


@dataclass
class ModuleScore:
    """Verdicts for one module's mutants."""

    module: str
    verdicts: Counter[str] = field(default_factory=Counter)
    out_of_scope: int = 0  # mutants of functions the target leaves out (see its `functions`)
    survivors: list[tuple[str, str]] = field(default_factory=list)  # (mutant name, diff)
    untested: list[str] = field(default_factory=list)  # mutants of functions no selected test runs

    def rate(self, equivalent: set[str]) -> tuple[float, int, int]:
        """Kill rate over the mutants that can be killed (equivalent ones set aside)."""
        excused = sum(1 for name, _ in self.survivors if name in equivalent)
        total = sum(self.verdicts.values()) - excused - self.verdicts["not checked"]
        killed = self.verdicts["killed"]
        return (killed / total if total else 1.0), killed, total

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> ModuleScore:
        """A score as :func:`save` wrote it."""
        return cls(
            module=row["module"],
            verdicts=Counter(row["verdicts"]),
            out_of_scope=row["out_of_scope"],
            survivors=[(name, diff) for name, diff in row["survivors"]],
            untested=list(row["untested"]),
        )


@dataclass
class Result:
    """One target's finished run, as kept in ``tests/mutation/results``."""

    target: str
    seconds: float
    fingerprint: dict[str, str]  # of the files mutated and tested, when the run began
    scores: list[ModuleScore]

    def changed(self, target: Target) -> list[str]:
        """The target's files that differ from the ones this run saw (or that it did not see)."""
        now = target.fingerprint()
        return [path for path, digest in now.items() if self.fingerprint.get(path) != digest]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def save(result: Result) -> None:
    """Keep ``result`` as ``tests/mutation/results/<target>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    scores = [{**asdict(score), "verdicts": dict(score.verdicts)} for score in result.scores]
    row = {**asdict(result), "seconds": round(result.seconds), "scores": scores}
    (RESULTS / f"{result.target}.json").write_text(json.dumps(row, indent=1, ensure_ascii=False) + "\n")


def load(target: Target) -> Result | None:
    """The kept result of ``target``'s last finished run, if there is one."""
    path = RESULTS / f"{target.name}.json"
    if not path.is_file():
        return None
    row = json.loads(path.read_text())
    scores = [ModuleScore.from_json(score) for score in row["scores"]]
    return Result(row["target"], float(row["seconds"]), dict(row["fingerprint"]), scores)


def load_targets() -> list[Target]:
    """The table ``[[tool.chat-mutation.target]]`` of the repository's pyproject.toml."""
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["chat-mutation"]["target"]
    return [
        Target(row["name"], tuple(row["mutate"]), tuple(row["tests"]), tuple(row.get("functions", ())))
        for row in table
    ]


def load_equivalent() -> dict[str, str]:
    """Reviewed equivalent mutants: mutant name -> why no test can tell it from the original."""
    if not EQUIVALENT.is_file():
        return {}
    rows = tomllib.loads(EQUIVALENT.read_text()).get("mutant", [])
    return {row["name"]: row["reason"] for row in rows}


def relocated(path: str) -> str:
    """Where ``path`` (repository-relative) sits in the workspace."""
    for prefix, target in RELOCATED.items():
        if path.startswith(prefix):
            return target + path.removeprefix(prefix)
    return path


def module_name(path: str) -> str:
    """The import name of a workspace path, as mutmut derives it."""
    return path.removesuffix(".py").removeprefix("src/").replace("/", ".")


def stale_installs() -> list[str]:
    """The installed packages whose modules differ from the source tree's.

    A target's workspace holds only its own packages; the others are imported from the
    session's installs, which ``nox -R`` (``--no-install``) leaves as they were: every
    mutant would then run against yesterday's services."""
    stale = []
    for prefix in RELOCATED:
        package = prefix.rstrip("/").rsplit("/", 1)[-1]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            stale.append(package)
            continue
        installed = Path(next(iter(spec.submodule_search_locations)))
        for source in sorted((ROOT / prefix).rglob("*.py")):
            copy = installed / source.relative_to(ROOT / prefix)
            if not copy.is_file() or copy.read_bytes() != source.read_bytes():
                stale.append(package)
                break
    return stale


def copy_compiled_codec(package: Path) -> None:
    """The installed wheel's C codec beside the mutated SDK (git tracks only its source).

    Without it the mutated SDK would run its Python path alone, and every mutant of the
    code that hands messages to the C codec would survive unseen.
    """
    spec = importlib.util.find_spec("chat_sdk._fastwire")
    if spec is None or spec.origin is None:
        raise SystemExit("chat_sdk._fastwire is not installed: run through `nox -s mutate`")
    shutil.copy2(spec.origin, package / Path(spec.origin).name)


def prepare(target: Target) -> Path:
    """A fresh workspace: the tracked tree, the packages relocated, and mutmut's configuration."""
    workspace = WORK / target.name
    shutil.rmtree(workspace, ignore_errors=True)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            copy = workspace / name
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)
    for prefix, target_dir in RELOCATED.items():
        shutil.copytree(workspace / prefix, workspace / target_dir)
    copy_compiled_codec(workspace / "src" / "chat_sdk")
    mutated = [relocated(path) for path in target.mutate]
    # Whole top-level packages: a package mutmut copies only in part would lose to the installed one.
    sources = sorted({"/".join(path.split("/")[: 2 if path.startswith("src/") else 1]) for path in mutated})
    also = sorted(p.name for p in workspace.iterdir() if p.name not in {"src", "mutants"})
    config = {
        "source_paths": sources,
        "only_mutate": mutated,
        "also_copy": also,
        "pytest_add_cli_args_test_selection": list(target.tests),
        "pytest_add_cli_args": ["-p", "no:cacheprovider"],
        "use_git_change_detection": False,
    }
    lines = ["", "[tool.mutmut]"] + [f"{key} = {json.dumps(value)}" for key, value in config.items()]
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n".join(lines) + "\n")
    return workspace


def score(target: Target, workspace: Path) -> list[ModuleScore]:
    """Read mutmut's verdicts (``mutants/**/*.meta``) and each survivor's diff."""
    scores = []
    for path in target.mutate:
        moved = relocated(path)
        module = module_name(moved)
        meta = json.loads((workspace / "mutants" / f"{moved}.meta").read_text())
        result = ModuleScore(path)
        for name, code in sorted(meta["exit_code_by_key"].items()):
            assert name.startswith(module), (name, module)
            if not target.in_scope(name):
                result.out_of_scope += 1
            elif code in KILLED:
                result.verdicts["killed"] += 1
            elif code is None:
                result.verdicts["not checked"] += 1
            elif code in NO_TESTS:
                result.verdicts["no tests"] += 1
                result.untested.append(name)
            elif code in SURVIVED:
                result.verdicts["survived"] += 1
                shown = subprocess.run(
                    [sys.executable, "-m", "mutmut", "show", name],
                    cwd=workspace,
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout
                result.survivors.append((name, shown.split("\n", 1)[-1].strip()))
            else:
                result.verdicts[f"exit {code}"] += 1
        scores.append(result)
    return scores


def render(scores: list[ModuleScore], equivalent: dict[str, str], seconds: dict[str, float]) -> str:
    """The Markdown report: the rate per module, then every survivor and its verdict."""
    lines = [
        "# Mutation testing report",
        "",
        "Written by `python3 -m nox -s mutate` (mutmut, each target against its own tests only;",
        "targets are the `[[tool.chat-mutation.target]]` table of pyproject.toml). A mutant is",
        "killed when a test fails or times out. Reviewed equivalent mutants (no test can tell",
        "them from the original) are listed with their reason in `tests/mutation/equivalent.toml`",
        "and left out of the rate. A target with a `functions` list mutates only those functions;",
        "the others' mutants are counted as out of scope (the table's `functions` says why).",
        "A mutant no selected test runs (no tests) counts against the rate, as a survivor does.",
        "",
        "| module | mutants | killed | survived | equivalent | no tests | kill rate | not checked "
        "| out of scope |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = set(equivalent)
    for result in scores:
        rate, killed, _ = result.rate(names)
        excused = sum(1 for name, _ in result.survivors if name in names)
        total = sum(result.verdicts.values())
        unchecked = result.verdicts["not checked"]
        lines.append(
            f"| `{result.module}` | {total} | {killed} | {result.verdicts['survived']} | {excused} "
            f"| {result.verdicts['no tests']} | {rate:.0%} | {unchecked} | {result.out_of_scope} |"
        )
    lines += ["", "Seconds per target: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()), ""]
    for result in scores:
        if result.untested:
            lines += [f"## Mutants no test of its target runs in `{result.module}`", ""]
            lines += [f"- `{name}`" for name in result.untested] + [""]
        if not result.survivors:
            continue
        lines += [f"## Survivors in `{result.module}`", ""]
        for name, diff in result.survivors:
            verdict = f"equivalent: {equivalent[name]}" if name in equivalent else "NOT REVIEWED"
            lines += [f"### `{name}`", "", verdict, "", "```diff", diff, "```", ""]
    return "\n".join(lines)


def main(selected: list[str]) -> int:
    """Run the selected targets (all by default), keep their results, write the report, and judge."""
    if selected == ["--report"]:
        return report()
    targets = [t for t in load_targets() if not selected or t.name in selected]
    unknown = set(selected) - {t.name for t in targets}
    if unknown:
        print(f"unknown targets: {sorted(unknown)}", file=sys.stderr)
        return 2
    if stale := stale_installs():
        print(
            f"installed {', '.join(stale)} differ from the source tree: run `nox -r -s mutate` "
            "(-R skips installing)",
            file=sys.stderr,
        )
        return 2
    for target in targets:
        began = time.monotonic()
        fingerprint = target.fingerprint()
        workspace = prepare(target)
        print(f"== {target.name}: mutating {', '.join(target.mutate)}", flush=True)
        # The workspace lies inside the repository's .nox/: keep git from finding the outer
        # checkout, where every copied file would look untracked to the drift check.
        env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(workspace)}
        command = [sys.executable, "-m", "mutmut", "run", *target.functions]
        subprocess.run(command, cwd=workspace, env=env, check=True)
        save(Result(target.name, time.monotonic() - began, fingerprint, score(target, workspace)))
    return report()


def report() -> int:
    """Write the committed report from every target's kept result, then judge it.

    A target without a result fails the run (it is never read as passing); a result whose
    modules or tests changed since its run is reported as such, with the files."""
    equivalent = load_equivalent()
    scores: list[ModuleScore] = []
    seconds: dict[str, float] = {}
    unfinished: list[str] = []
    stale: dict[str, list[str]] = {}
    for target in load_targets():
        result = load(target)
        if result is None:
            print(f"{target.name}: no finished run in {RESULTS}", file=sys.stderr)
            unfinished.append(target.name)
            continue
        scores += result.scores
        seconds[target.name] = result.seconds
        if changed := result.changed(target):
            stale[target.name] = changed
    text = render(scores, equivalent, seconds)
    if unused := unused_reviews(scores, equivalent):
        text += (
            "\n## Reviewed as equivalent, yet not surviving their last run\n\n"
            "A test now kills them (remove their entry from `tests/mutation/equivalent.toml`), or "
            "the run killed them by a timeout on a loaded machine (rerun the target).\n\n"
        )
        text += "".join(f"- `{name}`\n" for name in unused)
    if stale:
        text += (
            "\n## Results older than their code\n\n"
            "These targets' modules or tests changed after their last run; rerun them "
            "(`nox -s mutate -- TARGET`) for a current figure.\n\n"
        )
        text += "".join(
            f"- {name}: {', '.join(f'`{path}`' for path in paths)}\n" for name, paths in stale.items()
        )
    if unfinished:
        # Said in the report, and the run fails: a missing target is never read as passing.
        text += "\n## Targets without a finished run\n\n" + "".join(f"- {name}\n" for name in unfinished)
    REPORT.write_text(text)
    print(text)
    for name in stale:
        print(f"{name}: its modules or tests changed since its run", file=sys.stderr)
    return judge(scores, equivalent) or (2 if unfinished else 0)


def unused_reviews(scores: list[ModuleScore], equivalent: dict[str, str]) -> list[str]:
    """Reviewed equivalent mutants of the scored modules that did not survive their last run."""
    surviving = {name for result in scores for name, _ in result.survivors}
    modules = tuple(f"{module_name(relocated(result.module))}." for result in scores)
    return [name for name in equivalent if name.startswith(modules) and name not in surviving]


def judge(scores: list[ModuleScore], equivalent: dict[str, str]) -> int:
    """0 when every module reaches the floor with every survivor reviewed, else 1."""
    failed = []
    for result in scores:
        rate, _, _ = result.rate(set(equivalent))
        unreviewed = [name for name, _ in result.survivors if name not in equivalent]
        print(
            f"{result.module}: {rate:.0%} killed, {len(unreviewed)} unreviewed survivors, "
            f"{len(result.untested)} mutants no test runs"
        )
        if rate < TARGET_FLOOR or unreviewed:
            failed.append(result.module)
    if failed:
        print(f"below {TARGET_FLOOR:.0%} or with unreviewed survivors: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
