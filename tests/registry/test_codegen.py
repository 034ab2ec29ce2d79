"""Generation is deterministic, and the drift check sees every kind of difference."""

from __future__ import annotations

import filecmp
import json
import subprocess
from pathlib import Path

from registry.codegen import Drift, DriftKind, find_drift, generate
from registry.layout import RepoLayout
from registry.npm_package import npm_version

from ..conftest import copy_repo


def _tree(base: Path) -> dict[str, bytes]:
    return {
        path.relative_to(base).as_posix(): path.read_bytes()
        for path in sorted(base.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_two_generations_write_identical_files(repo: RepoLayout, tmp_path: Path) -> None:
    generate(repo, into=tmp_path / "first")
    generate(repo, into=tmp_path / "second")
    first, second = _tree(tmp_path / "first"), _tree(tmp_path / "second")
    assert first, "buf generate wrote nothing"
    assert first == second


def test_generation_writes_both_targets_and_the_image(repo: RepoLayout, tmp_path: Path) -> None:
    generate(repo, into=tmp_path)
    files = set(_tree(tmp_path))
    assert "sdk/python/src/chat_sdk/_generated/chat/v1/__init__.py" in files
    assert "sdk/python/pb2/chat/v1/message_service_pb2.py" in files
    assert "sdk/python/pb2/chat/v1/message_service_pb2.pyi" in files
    assert "sdk/python/pb2/chat/v1/message_service_grpc.py" in files
    assert "sdk/python/src/chat_sdk/schema.binpb" in files
    # The real google.protobuf must stay the one imported: the standard target
    # never writes its own copy of the well-known types. (pb2/google/api is written,
    # from the vendored annotations, but not packed: googleapis-common-protos ships it.)
    assert not any(name.startswith("sdk/python/pb2/google/protobuf") for name in files)


def test_committed_code_matches_buf(repo: RepoLayout) -> None:
    assert find_drift(repo) == []


def test_drift_lists_changed_stale_and_missing_files(scratch_repo: RepoLayout) -> None:
    root = scratch_repo.root
    changed = root / "sdk/python/pb2/chat/v1/common_pb2.py"
    changed.write_text(changed.read_text() + "# hand edit\n")
    stale = root / "sdk/python/src/chat_sdk/_generated/chat/v1/leftover.py"
    stale.write_text("")
    missing = root / "sdk/python/pb2/chat/v1/ai_service_grpc.py"
    missing.unlink()

    assert find_drift(scratch_repo) == [
        Drift("sdk/python/pb2/chat/v1/ai_service_grpc.py", DriftKind.MISSING),
        Drift("sdk/python/pb2/chat/v1/common_pb2.py", DriftKind.CHANGED),
        Drift("sdk/python/src/chat_sdk/_generated/chat/v1/leftover.py", DriftKind.STALE),
    ]


def test_a_proto_edit_without_regeneration_is_drift(scratch_repo: RepoLayout) -> None:
    proto = scratch_repo.root / "proto/chat/v1/common.proto"
    proto.write_text(proto.read_text().replace("display_name", "shown_name"))
    drifted = {item.path for item in find_drift(scratch_repo)}
    assert "sdk/python/pb2/chat/v1/common_pb2.py" in drifted
    assert "sdk/python/src/chat_sdk/schema.binpb" in drifted
    assert "sdk/typescript/src/gen/chat/v1/common_pb.ts" in drifted


def test_generation_writes_the_typescript_package_with_the_sdk_version(
    repo: RepoLayout, tmp_path: Path
) -> None:
    generate(repo, into=tmp_path)
    typescript = tmp_path / "sdk/typescript"
    assert (typescript / "src/gen/chat/v1/message_service_pb.ts").is_file()
    version_file = (tmp_path / "sdk/python/src/chat_sdk/_version.py").read_text()
    python_version = version_file.rsplit("__version__ = ", 1)[1].strip().strip('"')
    for name in ("package.json", "package-lock.json"):
        document = json.loads((typescript / name).read_text())
        assert document["version"] == npm_version(python_version), name
    assert json.loads((typescript / "package-lock.json").read_text())["packages"][""][
        "version"
    ] == npm_version(python_version)


def test_generated_files_git_does_not_track_are_reported(tmp_path: Path) -> None:
    layout = copy_repo(tmp_path)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run(
        [*git, "rm", "-q", "--cached", "sdk/python/pb2/chat/v1/common_pb2.pyi"], cwd=tmp_path, check=True
    )
    subprocess.run([*git, "commit", "-q", "-m", "all but one"], cwd=tmp_path, check=True)

    assert find_drift(layout) == [Drift("sdk/python/pb2/chat/v1/common_pb2.pyi", DriftKind.UNCOMMITTED)]


def test_generate_rewrites_the_tree_to_match(scratch_repo: RepoLayout, tmp_path: Path) -> None:
    stale = scratch_repo.root / "sdk/python/pb2/chat/v1/old_pb2.py"
    stale.write_text("")
    generate(scratch_repo)
    assert not stale.exists()
    assert find_drift(scratch_repo) == []
    fresh = tmp_path / "fresh"
    generate(scratch_repo, into=fresh)
    image = scratch_repo.image.relative_to(scratch_repo.root)
    assert filecmp.cmp(fresh / image, scratch_repo.image, shallow=False)


def test_a_hand_edited_sdk_version_is_drift(scratch_repo: RepoLayout) -> None:
    # README: `generate --check` covers the SDK version file like any generated file.
    version = scratch_repo.version_file
    version.write_text(version.read_text().replace('__version__ = "', '__version__ = "9'))
    assert find_drift(scratch_repo) == [Drift("sdk/python/src/chat_sdk/_version.py", DriftKind.CHANGED)]


def test_a_missing_sdk_version_file_is_drift(scratch_repo: RepoLayout) -> None:
    scratch_repo.version_file.unlink()
    assert find_drift(scratch_repo) == [Drift("sdk/python/src/chat_sdk/_version.py", DriftKind.MISSING)]


def test_drift_reads_as_its_kind_then_the_path() -> None:
    assert str(Drift("a/b.py", DriftKind.STALE)) == "      stale  a/b.py"


def test_python_caches_in_the_generated_trees_are_not_drift(scratch_repo: RepoLayout) -> None:
    cache = scratch_repo.root / "sdk/python/pb2/chat/v1/__pycache__"
    cache.mkdir()
    (cache / "common_pb2.cpython-311.pyc").write_bytes(b"\0")
    assert find_drift(scratch_repo) == []
