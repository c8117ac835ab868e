"""The house rules of the code base, checked on every test run: orchestration/ only wires
stages together, DuckDB is opened one way, facts are named once, and imports flow one way."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "warehouse",
    "ingestion",
    "scoring",
    "quality",
    "serving",
    "reminders",
    "forecast",
    "dashboards",
    "orchestration",
    "benchmark",
)
# Lower layers never import higher ones (a package may import its own layer and below).
# The command line launches everything, the benchmark included.
LAYERS = {
    "warehouse": 0,
    "ingestion": 1,
    "scoring": 1,
    "quality": 2,
    "reminders": 2,
    "forecast": 2,
    "serving": 2,
    "dashboards": 3,
    "orchestration": 3,
    "benchmark": 4,
    "orchestration.cli": 5,
}
SQL = re.compile(
    r"\bSELECT\b.*\bFROM\b|\bINSERT INTO\b|\bCREATE (OR REPLACE )?(TABLE|SCHEMA|VIEW)\b"
    r"|\bATTACH\b|\bCOPY\b.*\bTO\b|\bSET TimeZone\b"
)


def layer(module: str) -> int:
    """The layer of a module: its longest listed prefix."""
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def product_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every project module this file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name in known:
                found.add(name)
    return found


def string_constants(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_orchestration_holds_no_sql_and_opens_no_database():
    for path in (ROOT / "orchestration").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import duckdb" not in text, f"{path} uses DuckDB itself"
        assert "connect(" not in text, f"{path} opens a connection"
        sql = [s for s in string_constants(path) if SQL.search(s)]
        assert not sql, f"{path} holds SQL: {sql[:2]}"


def test_duckdb_is_opened_in_one_module():
    opening = sorted(
        str(path.relative_to(ROOT))
        for path in product_modules().values()
        if "duckdb.connect(" in path.read_text(encoding="utf-8")
    )
    assert opening == ["warehouse/database.py"], opening


def test_the_default_time_zone_is_named_once():
    naming = [
        str(path.relative_to(ROOT))
        for path in product_modules().values()
        for _ in re.finditer("Asia/Shanghai", path.read_text(encoding="utf-8"))
    ]
    assert naming == ["warehouse/settings.py"], naming


def test_imports_flow_one_way_without_circles():
    modules = product_modules()
    graph = {name: imported_modules(path, set(modules)) - {name} for name, path in modules.items()}
    upward = [
        (name, target)
        for name, targets in graph.items()
        for target in targets
        if layer(target) > layer(name)
    ]
    assert not upward, f"a lower stage imports a higher one: {upward}"
    # A circle: a module that reaches itself through what it imports (packages' __init__
    # aside, which only re-export their own modules).
    circles = []
    for start in graph:
        seen, stack = set(), list(graph[start])
        while stack:
            current = stack.pop()
            if current == start:
                circles.append(start)
                break
            if current not in seen:
                seen.add(current)
                stack.extend(graph.get(current, ()))
    assert not circles, f"import circles through: {sorted(circles)}"


def test_commands_that_do_not_run_the_job_start_without_dagster_or_dbt():
    """`oppwh sql`, `quality`, `metrics`… start in a fraction of a second: the job's
    Definitions (Dagster, dagster-dbt, dbt: ~3 s) load only for the commands that run it."""
    import subprocess
    import sys

    heavy = ("dagster", "dagster_dbt", "dbt", "great_expectations", "pyspark", "metricflow")
    probe = (
        "import sys; from orchestration.cli import build_parser; build_parser(); "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "", f"the command line imports {loaded} before any command runs"
