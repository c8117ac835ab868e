"""Backup and restore of what cannot be rebuilt: the warehouse (its raw tables hold every
export ever loaded, the snapshots and the grade history), the landing archive, and the
data folder's configuration. The serving copy, exports and Parquet files are rebuilt by
the next run and are not backed up.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ingestion.files import content_hash
from orchestration.lock import writer_lock

CONFIG_FILES = ("oppwh.yml", "scoring.yml")
CONFIG_FOLDERS = ("mappings", "archive")


class BackupError(RuntimeError):
    """A backup folder that is incomplete or damaged; nothing was restored."""


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def backup(data_dir: Path, target_root: Path) -> Path:
    """Copy the warehouse (checkpointed, with the writer lock held), archive and config into
    a new dated folder with a manifest of checksums."""
    data_dir = data_dir.resolve()
    warehouse = data_dir / "warehouse.duckdb"
    if not warehouse.exists():
        raise BackupError(f"no warehouse at {warehouse}: nothing to back up")
    target = target_root.resolve() / f"oppwh-backup-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    with writer_lock(data_dir, purpose="backup"):
        with duckdb.connect(str(warehouse)) as con:
            con.execute("CHECKPOINT")  # everything in the file, nothing left in the WAL
        target.mkdir(parents=True)
        shutil.copy2(warehouse, target / "warehouse.duckdb")
        for name in CONFIG_FILES:
            if (data_dir / name).exists():
                shutil.copy2(data_dir / name, target / name)
        for name in CONFIG_FOLDERS:
            if (data_dir / name).is_dir():
                shutil.copytree(data_dir / name, target / name)
    manifest = {
        "created_at": datetime.now(UTC).isoformat(),
        "data_dir": str(data_dir),
        "files": {str(p.relative_to(target)): content_hash(p) for p in _files(target)},
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return target


def verify(backup_dir: Path) -> dict:
    manifest_path = backup_dir / "manifest.json"
    if not manifest_path.exists():
        raise BackupError(f"{backup_dir}: no manifest.json: not an oppwh backup")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for name, digest in manifest["files"].items():
        path = backup_dir / name
        if not path.exists():
            raise BackupError(f"{backup_dir}: {name} is missing")
        if content_hash(path) != digest:
            raise BackupError(f"{backup_dir}: {name} does not match its checksum (damaged copy)")
    if "warehouse.duckdb" not in manifest["files"]:
        raise BackupError(f"{backup_dir}: the backup holds no warehouse")
    return manifest


def restore(backup_dir: Path, data_dir: Path) -> None:
    """Check every file of the backup, then put the warehouse (atomically), the archive and
    the configuration back. The next `oppwh run` republishes the serving copy."""
    backup_dir, data_dir = backup_dir.resolve(), data_dir.resolve()
    verify(backup_dir)
    with writer_lock(data_dir, purpose="restore"):
        tmp = data_dir / ".warehouse.duckdb.restore"
        shutil.copy2(backup_dir / "warehouse.duckdb", tmp)
        (data_dir / "warehouse.duckdb.wal").unlink(missing_ok=True)
        os.replace(tmp, data_dir / "warehouse.duckdb")
        for name in CONFIG_FILES:
            if (backup_dir / name).exists():
                shutil.copy2(backup_dir / name, data_dir / name)
        for name in CONFIG_FOLDERS:
            if (backup_dir / name).is_dir():
                shutil.copytree(backup_dir / name, data_dir / name, dirs_exist_ok=True)
