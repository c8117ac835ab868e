"""How the warehouse calls dbt: the project's folder, the venv's dbt, the arguments of the
daily build, and the docs site. Pure argument builders, so they are tested without dbt."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from packaging import version

from warehouse.layout import DataFolder

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
# Reference data shipped with the project (stages, activity words, rates, calendar); the
# contracts read them before dbt has loaded them into the warehouse.
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"


def dbt_executable() -> str:
    """The dbt of this interpreter's venv: `.venv/bin/oppwh` may run without an active venv."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


@functools.cache
def dbt_version(executable: str) -> version.Version:
    """The dbt executable's version, asked once per process (not once per run); this venv's
    own dbt is the installed dbt-core package, whose version needs no second dbt start."""
    if Path(executable).parent == Path(sys.executable).parent:
        return version.parse(importlib.metadata.version("dbt-core"))
    output = subprocess.check_output([executable, "--version"], text=True)
    match = re.search(r"(\d+\.\d+\.\d+)", output)
    if not match:
        raise ValueError(f"Could not parse the dbt version from: {output}")
    return version.parse(match.group(1))


def manifest_is_stale(project_dir: Path, manifest: Path) -> bool:
    """True when manifest.json is missing or older than any file of the dbt project."""
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    for folder in ("models", "seeds", "macros", "tests"):
        for path in (project_dir / folder).rglob("*"):
            if path.is_file() and path.stat().st_mtime > built:
                return True
    return (project_dir / "dbt_project.yml").stat().st_mtime > built


def prepare_manifest(project_dir: Path, manifest: Path) -> Path:
    """Run `dbt parse` when the manifest is missing or stale, so Definitions always load."""
    if manifest_is_stale(project_dir, manifest):
        subprocess.run(
            [dbt_executable(), "parse", "--quiet", "--profiles-dir", str(project_dir)],
            cwd=project_dir,
            check=True,
            # dbt's log beside the manifest (ignored by git), not in a logs/ folder of its own
            env={
                **os.environ,
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                "DBT_LOG_PATH": str(project_dir / "target"),
            },
        )
    return manifest


def dbt_build_args(vars_: dict, full_refresh: bool = False, target: str = "duckdb") -> list[str]:
    """`dbt build` for the daily job: unit tests run in the test suite, not every day.

    Incremental models take only the new loads unless a full refresh is asked for.
    `target` is the profile's output: duckdb, or spark for the same project on Spark.
    """
    return [
        "build",
        "--target",
        target,
        "--vars",
        json.dumps(vars_, ensure_ascii=False),
        "--exclude-resource-type",
        "unit_test",
        *(["--full-refresh"] if full_refresh else []),
    ]


def summarise_results(results: list[dict]) -> str:
    """'12 models, 31 tests: 31 pass' style counts from dbt's run_results.json."""
    kinds = Counter(r["unique_id"].split(".")[0] for r in results)
    statuses = Counter(r["status"] for r in results)
    shown = ", ".join(f"{n} {kind}s" for kind, n in sorted(kinds.items()))
    return f"{shown}: " + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))


def build_dbt_docs(data_dir: Path) -> Path:
    """`dbt docs generate` into DATA_DIR/dbt_docs, with the catalog of the built warehouse."""
    folder = DataFolder.at(data_dir)
    out, warehouse = folder.dbt_docs, folder.warehouse
    command = [
        dbt_executable(),
        "docs",
        "generate",
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(out),
        "--vars",
        json.dumps({"warehouse_path": str(warehouse)}),
    ]
    if not warehouse.exists():
        command.append("--empty-catalog")
    result = subprocess.run(command, cwd=DBT_PROJECT_DIR, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dbt docs generate failed:\n{result.stdout[-3000:]}")
    return out
