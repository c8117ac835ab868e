"""dbt's Jinja context for SQL lint (make lint), offline: no dbt, no adapter, no warehouse.

`var` gives the project's own defaults (dbt_project.yml `vars:`), `target` is the DuckDB
output, `adapter.get_relation` finds every relation (so incremental SQL is linted too), and
`adapter.dispatch` renders a macro's DuckDB implementation (`duckdb__<name>`, else
`default__<name>`) from macros/, as dbt does on DuckDB: the linted SQL is the SQL the daily
job runs.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import yaml

PROJECT = Path(__file__).resolve().parents[1]
PROJECT_VARS = yaml.safe_load((PROJECT / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]


def var(name, default=None):
    value = PROJECT_VARS.get(name, default)
    if value is None and name == "as_of":
        return "2025-06-30"  # the CLI always passes it; any day renders the same SQL
    return value


class _Target:
    type = "duckdb"
    name = "duckdb"
    schema = "main"


target = _Target()


class _Adapter:
    """dbt's adapter.dispatch, resolving to the DuckDB implementation."""

    def __init__(self):
        self._module = None

    def _macros(self):
        if self._module is None:
            env = jinja2.Environment(extensions=["jinja2.ext.do"])
            source = "\n".join(
                p.read_text(encoding="utf-8") for p in sorted((PROJECT / "macros").glob("*.sql"))
            )
            context = {"var": var, "target": target, "execute": False, "adapter": self}
            context["return"] = lambda value: value
            self._module = env.from_string(source).make_module(context)
        return self._module

    def dispatch(self, name, macro_namespace=None):
        for candidate in (f"duckdb__{name}", f"default__{name}"):
            macro = getattr(self._macros(), candidate, None)
            if macro is not None:
                return macro
        raise AttributeError(f"no DuckDB implementation of macro {name!r}")

    def get_relation(self, database=None, schema=None, identifier=None):
        """Every relation exists, so an incremental model's incremental SQL is linted too."""
        return f"{schema}.{identifier}"


adapter = _Adapter()
