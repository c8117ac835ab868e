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

from warehouse.database import connect
from warehouse.folders import content_hash
from warehouse.layout import (
    ARCHIVE_FOLDER,
    CONFIG_FILE,
    MAPPINGS_FOLDER,
    SCORING_FILE,
    WAREHOUSE_FILE,
)
from warehouse.lock import writer_lock

CONFIG_FILES = (CONFIG_FILE, SCORING_FILE)
CONFIG_FOLDERS = (MAPPINGS_FOLDER, ARCHIVE_FOLDER)


class BackupError(RuntimeError):
    """A backup folder that is incomplete or damaged; nothing was restored."""


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _links(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if (Path(folder) / n).is_symlink()]


def backup(data_dir: Path, target_root: Path) -> Path:
    """Copy the warehouse (checkpointed, with the writer lock held), archive and config into
    a new dated folder with a manifest of checksums."""
    data_dir = data_dir.resolve()
    warehouse = data_dir / WAREHOUSE_FILE
    if not warehouse.exists():
        raise BackupError(f"no warehouse at {warehouse}: nothing to back up")
    target = target_root.resolve() / f"oppwh-backup-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    with writer_lock(data_dir, purpose="backup"):
        with connect(warehouse) as con:
            con.execute("CHECKPOINT")  # everything in the file, nothing left in the WAL
        target.mkdir(parents=True)
        shutil.copy2(warehouse, target / WAREHOUSE_FILE)
        for name in CONFIG_FILES:
            if (data_dir / name).exists():
                shutil.copy2(data_dir / name, target / name)
        for name in CONFIG_FOLDERS:
            if (data_dir / name).is_dir():
                # Links are never followed into a backup (nor restored from one).
                shutil.copytree(data_dir / name, target / name, ignore=_links)
    manifest = {
        "created_at": datetime.now(UTC).isoformat(),
        "data_dir": str(data_dir),
        "files": {str(p.relative_to(target)): content_hash(p) for p in _files(target)},
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return target


def _entry_problem(backup_dir: Path, name: str) -> str | None:
    """Why a manifest entry may not be restored, or None: only relative paths under the
    backed-up names, no `..`, no symlink anywhere on the way, regular files only."""
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or ".." in parts or "\\" in name:
        return "an absolute path or one with '..'"
    if parts[0] not in (WAREHOUSE_FILE, *CONFIG_FILES, *CONFIG_FOLDERS):
        return "not something a backup holds"
    if parts[0] in CONFIG_FOLDERS and len(parts) < 2:
        return "a folder, not a file"
    path = backup_dir
    for part in parts:
        path = path / part
        if path.is_symlink():
            return "a symbolic link"
    if not path.exists():
        return "missing"
    if not path.is_file():
        return "not a regular file"
    return None


def verify(backup_dir: Path) -> dict:
    """Check the backup before anything is restored: every manifest entry safe and matching
    its checksum, and nothing in the folder that the manifest does not list."""
    manifest_path = backup_dir / "manifest.json"
    if not manifest_path.exists():
        raise BackupError(f"{backup_dir}: no manifest.json: not an oppwh backup")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{backup_dir}: manifest.json is not a backup manifest") from exc
    for name, digest in files.items():
        problem = _entry_problem(backup_dir, str(name))
        if problem:
            raise BackupError(f"{backup_dir}: manifest entry {name!r} refused: {problem}")
        if content_hash(backup_dir / name) != digest:
            raise BackupError(f"{backup_dir}: {name} does not match its checksum (damaged copy)")
    for path in sorted(backup_dir.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        name = path.relative_to(backup_dir).as_posix()
        if name != "manifest.json" and name not in files:
            raise BackupError(f"{backup_dir}: {name!r} is not in the manifest; nothing restored")
    if WAREHOUSE_FILE not in files:
        raise BackupError(f"{backup_dir}: the backup holds no warehouse")
    return manifest


def _restore_file(source: Path, target: Path, digest: str) -> None:
    """Copy one verified entry into place through a temporary name, checking the bytes
    copied against the manifest (the backup may change between verify and copy)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.restore")
    shutil.copyfile(source, tmp)
    if content_hash(tmp) != digest:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"{source} changed while being restored; restore it again")
    os.replace(tmp, target)


def restore(backup_dir: Path, data_dir: Path) -> None:
    """Check every entry of the backup, then put back exactly the manifest's files: the
    warehouse (atomically), the archive and the configuration. The next `oppwh run`
    republishes the serving copy."""
    backup_dir, data_dir = backup_dir.resolve(), data_dir.resolve()
    files = verify(backup_dir)["files"]
    with writer_lock(data_dir, purpose="restore"):
        (data_dir / "warehouse.duckdb.wal").unlink(missing_ok=True)
        _restore_file(
            backup_dir / WAREHOUSE_FILE,
            data_dir / WAREHOUSE_FILE,
            files[WAREHOUSE_FILE],
        )
        for name, digest in files.items():
            if name != WAREHOUSE_FILE:
                _restore_file(backup_dir / name, data_dir / name, digest)
