"""Shared fixtures: a sandbox with a real config, staging tree and database under tmp_path."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from media_pipeline.cli import mp
from media_pipeline.config import load_config
from media_pipeline.items import ItemKey


@dataclass
class Sandbox:
    root: Path
    config_path: Path

    @property
    def config(self):
        return load_config(str(self.config_path))

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    @property
    def database(self) -> Path:
        return self.root / "db" / "state.db"

    def write_config(self, **overrides) -> None:
        settings = {
            "staging_root": str(self.staging),
            "library_root": str(self.root / "library"),
            "database": str(self.database),
            "gates": [],
            **overrides,
        }
        self.config_path.write_text(yaml.safe_dump(settings), encoding="utf-8")

    def folder(self, key: ItemKey, stage: str) -> Path:
        return Path(key.folder(str(self.staging), stage))

    def mark(self, key: ItemKey, stage: str, *markers: str) -> Path:
        """Do what a stage script does: a file in its output folder, then its markers."""
        folder = self.folder(key, stage)
        (folder / ".pipeline").mkdir(parents=True, exist_ok=True)
        (folder / "video.mkv").write_bytes(b"not really video")
        for marker in markers:
            (folder / ".pipeline" / f"{marker}.done").touch()
            (folder / ".pipeline" / f"{marker}.timestamp").write_text("2026-11-24T12:00:00+00:00\n")
        return folder

    def mp(self, *args: str, expect: int | None = 0):
        result = CliRunner().invoke(
            mp, [*args, "--config", str(self.config_path)], catch_exceptions=False
        )
        if expect is not None:
            assert result.exit_code == expect, (result.exit_code, result.output, result.stderr)
        return result

    def status_json(self) -> dict:
        return json.loads(self.mp("status", "--json").stdout)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    box = Sandbox(root=tmp_path, config_path=tmp_path / "config.yaml")
    box.staging.mkdir()
    (tmp_path / "library").mkdir()
    box.write_config()
    return box


def tree_snapshot(*roots: Path) -> dict[str, bytes | None]:
    """Every path under roots with its bytes (None for folders), to compare before/after."""
    snapshot = {}
    for root in roots:
        if not root.exists():
            continue
        for folder, _folders, files in os.walk(root):
            snapshot[folder] = None
            for name in files:
                path = os.path.join(folder, name)
                snapshot[path] = Path(path).read_bytes()
    return snapshot
