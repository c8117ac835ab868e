"""Processed landing files go to a dated archive folder: never deleted, and enough to replay
the whole warehouse into an empty one (`oppwh replay`)."""

from __future__ import annotations

import shutil
from pathlib import Path

NOT_LOADED = "not_loaded"


def archive_target(folder: Path, name: str) -> Path:
    """A free name in the folder: the same file name twice on one day gets a suffix."""
    target = folder / name
    n = 1
    while target.exists():
        target = folder / f"{Path(name).stem}.{n}{Path(name).suffix}"
        n += 1
    return target


def archive_files(
    paths_and_loaded: list[tuple[Path, bool]], day_folder: Path, mode: str
) -> list[Path]:
    """Move (or copy) each processed file into the day's folder; files that loaded nothing
    (not recognised, unreadable, blocked) go to its `not_loaded` subfolder."""
    if mode == "off":
        return []
    archived = []
    for path, loaded in paths_and_loaded:
        if not path.exists():
            continue
        folder = day_folder if loaded else day_folder / NOT_LOADED
        folder.mkdir(parents=True, exist_ok=True)
        target = archive_target(folder, path.name)
        if mode == "copy":
            shutil.copy2(path, target)
        else:
            shutil.move(str(path), target)
        archived.append(target)
    return archived


def archived_days(archive: Path) -> list[Path]:
    """The archive's day folders (YYYY-MM-DD), oldest first."""
    if not archive.is_dir():
        return []
    return sorted(p for p in archive.iterdir() if p.is_dir() and len(p.name) == 10)
