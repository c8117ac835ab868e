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


def archive_files(taken: list, day_folder: Path, mode: str) -> list[Path]:
    """Put each file's intake copy (the bytes that were read) into the day's folder; files
    that loaded nothing (not recognised, unreadable, blocked) go to its `not_loaded`
    subfolder. In move mode the landing file is then removed, unless it changed after it
    was taken (then it stays for the next run). Copy and off modes leave landing alone."""
    archived = []
    for item in taken:
        if mode == "off" or not item.snapshot.exists():
            item.snapshot.unlink(missing_ok=True)
            continue
        folder = day_folder if item.loaded else day_folder / NOT_LOADED
        folder.mkdir(parents=True, exist_ok=True)
        target = archive_target(folder, item.landing.name)
        shutil.move(str(item.snapshot), target)
        archived.append(target)
        if mode == "move" and _unchanged(item.landing, item.state):
            item.landing.unlink(missing_ok=True)
    return archived


def _unchanged(path: Path, state: tuple[int, int] | None) -> bool:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    return state is not None and (stat.st_size, stat.st_mtime_ns) == tuple(state)


def clear_intake(intake: Path) -> None:
    """Copies left by a run that stopped before archiving them: their landing files are
    still in landing (removed only after archiving), so the next run takes them again."""
    if intake.is_dir():
        shutil.rmtree(intake, ignore_errors=True)


def archived_days(archive: Path) -> list[Path]:
    """The archive's day folders (YYYY-MM-DD), oldest first."""
    if not archive.is_dir():
        return []
    return sorted(p for p in archive.iterdir() if p.is_dir() and len(p.name) == 10)
