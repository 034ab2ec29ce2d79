"""Assessing the working schema against a base: the facts behind `breaking` and `review`."""

from __future__ import annotations

import os
import subprocess

from registry.breaking import check_base, check_clients, check_releases, check_waivers
from registry.diff import diff_schemas
from registry.images import build_image, resolve_base
from registry.layout import RepoLayout
from registry.lint import lint_findings
from registry.releases import latest_release
from registry.review import Review
from registry.semver import Bump, required_bump
from registry.versioning import derived_version


def _git_ref_exists(layout: RepoLayout, ref: str) -> bool:
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=layout.root,
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def default_base(layout: RepoLayout) -> str | None:
    """The pull request's target branch on CI, else ``main``, else the latest release."""
    target = os.environ.get("GITHUB_BASE_REF")
    candidates = [f"origin/{target}", target] if target else []
    candidates += ["origin/main", "main"]
    for ref in candidates:
        if ref and _git_ref_exists(layout, ref):
            return ref
    last = latest_release(layout)
    return last.version if last else None


def assess(layout: RepoLayout, base: str | None = None) -> Review:
    """Lint, diff and breaking-check the working schema against ``base`` (default: see above)."""
    head = build_image(layout)
    chosen = base if base is not None else default_base(layout)
    checks = check_releases(layout)
    changes = []
    label = "nothing (no base found)"
    if chosen is not None:
        label, base_image = resolve_base(layout, chosen)
        changes = diff_schemas(base_image, head)
        checks.append(check_base(layout, label, base_image, head))
        checks.append(check_clients(layout, label, changes))
    if layout.waivers.is_file():
        checks.append(check_waivers(layout, checks))
    last = latest_release(layout)
    since_release = diff_schemas(last.load(), head) if last else []
    return Review(
        base=label,
        head="working tree",
        previous_release=last.version if last else None,
        bump=required_bump(changes),
        release_bump=required_bump(since_release) if last else Bump.MAJOR,
        sdk_version=derived_version(layout, head),
        module_dir=layout.proto_dir.relative_to(layout.root).as_posix(),
        changes=changes,
        lint=lint_findings(layout),
        breaking=checks,
        packages={file.name: file.package for file in head.file},
    )
