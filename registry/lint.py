"""Schema lint (``buf lint``) and format (``buf format``) findings, with file, line and rule."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from registry.buf import BufError, run_buf
from registry.layout import RepoLayout

_DIFF_FILE = re.compile(r"^\+\+\+ (?P<path>\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Finding:
    """One rule broken at one place of the module."""

    path: str
    line: int
    column: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.rule}: {self.message}"


def parse_findings(json_lines: str) -> list[Finding]:
    """Parse buf's ``--error-format=json`` output (one object a line) into findings."""
    findings = []
    for line in json_lines.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        findings.append(
            Finding(
                path=item.get("path", ""),
                line=int(item.get("start_line", 0)),
                column=int(item.get("start_column", 0)),
                rule=item.get("type", ""),
                message=item.get("message", ""),
            )
        )
    return findings


def lint_findings(layout: RepoLayout) -> list[Finding]:
    """Run ``buf lint`` on the module; compile errors come back as rule ``COMPILE``."""
    result = run_buf(["lint", "--error-format=json"], cwd=layout.root, check=False)
    if result.returncode not in (0, 100):
        raise BufError(f"buf lint failed with exit code {result.returncode}:\n{result.stderr.strip()}")
    return parse_findings(result.stdout)


def format_diff(layout: RepoLayout) -> str:
    """Return ``buf format``'s diff of the module: empty when every file is formatted."""
    result = run_buf(["format", "--diff", "--exit-code"], cwd=layout.root, check=False)
    if result.returncode not in (0, 100):
        raise BufError(f"buf format failed with exit code {result.returncode}:\n{result.stderr.strip()}")
    return result.stdout


def unformatted_files(diff: str) -> list[str]:
    """The files a ``buf format --diff`` output would change."""
    return sorted({match["path"].removesuffix(".formatted") for match in _DIFF_FILE.finditer(diff)})
