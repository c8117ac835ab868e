"""Housekeeping of the folders a run writes under DATA_DIR."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path


def prune_old_folders(parent: Path, keep: int, prefix: str = "") -> list[Path]:
    """Remove all but the `keep` newest sub-folders (by modification time) named with
    `prefix`; returns what was removed. Per-run output must not pile up for ever."""
    if not parent.is_dir():
        return []
    folders = sorted(
        (
            p
            for p in parent.iterdir()
            if p.is_dir() and not p.is_symlink() and p.name.startswith(prefix)
        ),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    removed = folders[keep:]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes: the load ledger's key for 'already loaded', a backup's check."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
