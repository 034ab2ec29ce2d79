"""Where things live in this repository: one place, so no module guesses a path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RepoLayout:
    """Paths of the schema module and of everything generated from it."""

    root: Path

    @property
    def buf_gen_yaml(self) -> Path:
        """The generation template: which plugins write which target where."""
        return self.root / "buf.gen.yaml"

    @property
    def proto_dir(self) -> Path:
        """The buf module's root directory."""
        return self.root / "proto"

    @property
    def sdk_dir(self) -> Path:
        """The SDK distribution's project directory (its own pyproject.toml)."""
        return self.root / "sdk" / "python"

    @property
    def typescript_dir(self) -> Path:
        """The TypeScript package's directory (package.json, the generated ``src/gen`` tree)."""
        return self.root / "sdk" / "typescript"

    @property
    def image(self) -> Path:
        """The compiled schema shipped inside the SDK package (``buf build`` output)."""
        return self.sdk_dir / "src" / "chat_sdk" / "schema.binpb"

    @property
    def version_file(self) -> Path:
        """The SDK's version, derived from the releases and the pending changes."""
        return self.sdk_dir / "src" / "chat_sdk" / "_version.py"

    @property
    def generated(self) -> tuple[Path, ...]:
        """Every path that generation owns: the target trees, the image and the versions."""
        return (
            self.sdk_dir / "src" / "chat_sdk" / "_generated",
            self.sdk_dir / "pb2",
            self.image,
            self.version_file,
            self.typescript_dir / "src" / "gen",
            self.typescript_dir / "package.json",
            self.typescript_dir / "package-lock.json",
        )

    @property
    def releases_dir(self) -> Path:
        """One folder per released version, holding the schema exactly as shipped."""
        return self.root / "releases"

    @property
    def fixtures_dir(self) -> Path:
        """Golden wire fixtures, one folder per release, written when the release is cut."""
        return self.root / "compat_tests" / "fixtures"

    @property
    def changelog(self) -> Path:
        """The human record of every release."""
        return self.root / "CHANGELOG.md"

    @property
    def review_rules(self) -> Path:
        """The review engine's rules table, generated from registry/diff/ (``python -m registry rules``)."""
        return self.root / "docs" / "review-rules.md"

    @property
    def waivers(self) -> Path:
        """Intentional breaking changes, each with a written reason."""
        return self.root / "waivers.toml"


def find_root(start: Path | None = None) -> Path:
    """Return the repository root: the nearest directory above ``start`` holding buf.yaml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "buf.yaml").is_file() and (candidate / "buf.gen.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no buf.yaml and buf.gen.yaml found in {here} or any parent directory")
