"""Which dbt models, seeds and tests a build can leave as they are: those whose inputs are
exactly those of their last successful build. dbt would rebuild such a model into the same
rows and a test would find the same result, so the daily build excludes them (one dbt
invocation, `--exclude`) and reports their last result. On a small team's next day with no
new export that is every staging view, the deduplicated accounts, owners and activities,
the seeds and the tests on them: a third of the build's nodes.

A node's fingerprint covers:
- its own definition as dbt parsed it (SQL, config, columns, a test's arguments);
- the project's macros, dbt_project.yml and profiles.yml, and the run's settings (vars, dbt
  version, target);
- the raw tables it reads (their row count and content hash);
- the as-of day, when the node measures against it (through the as_of_date macro); for a
  node that uses the day only as a cutoff on dates of its data (rows exported, created,
  closed or entered by the end of the day), declared in its config as `meta.as_of_cutoffs`
  (relation, column, optional where), instead how many of those dates fall within the day:
  its rows are the same for every as-of day no such date falls between, so a next day on
  which no date of the data falls keeps it (with what reads only it);
- for a node that reads the as-of day only as the week it falls in (one row per week up to
  the as-of week, each counted from its data), declared `meta.as_of_week`, the week
  instead of the day: kept through the week while its data stays the same;
- the fingerprints of the nodes it reads; for a node declared `meta.as_of_independent`
  (it reads none of its inputs' figures counted from the as-of day: ages, days since, open
  stages' days so far), their fingerprints without those figures' day, so it is kept on a
  next day that changes nothing it reads, though the marts it reads are built again.

A node is kept when its fingerprint equals the one stored after its last successful build,
its table or view is still there, and every node it reads is kept (an as-of independent
node's inputs may be built again: its fingerprint says their rows it reads are the same). A node that reads a table
a later step writes in Python (the grades, the forecast) is never kept: its input is not a
raw table whose content is measured here. Rows are stored in STATE_TABLE after each build,
for the nodes it built; before a build the rows of every node about to be built are
deleted, so a build killed half-way leaves no row claiming a node it did not finish.
"""

from __future__ import annotations

import graphlib
import json
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path

from warehouse.build_state import KEPT_RESULTS_FILE, digest, project_digest
from warehouse.database import (
    STATE_SCHEMA,
    Database,
    ensure_state_schema,
    table_exists,
    used_params,
)

STATE_TABLE = f"{STATE_SCHEMA}.dbt_nodes"
# Node kinds a build can keep (snapshots and operations always run).
KEPT_TYPES = ("model", "seed", "test")
# The results of a finished build whose node dbt built (a failed or skipped node runs again).
BUILT_STATUSES = ("success", "pass", "warn")
# The macro the models read the as-of day through (macros/as_of.sql).
AS_OF_MACRO = "as_of_date"
# Parts of a parsed node that change at every parse without changing what it builds.
VOLATILE_KEYS = ("created_at",)
# The project's files every node's SQL may use (each node's own file is in its definition).
SHARED_INPUTS = ("macros", "materializations", "dbt_project.yml", "profiles.yml")
# The raw schema, whose tables' content is measured (build_state.raw_figures).
RAW_SCHEMA = "raw"
# A node's config meta naming the dates it cuts at the as-of day (see the module docstring).
CUTOFFS_META = "as_of_cutoffs"
# A node's config meta saying it reads no figure counted from the as-of day.
INDEPENDENT_META = "as_of_independent"
# A node's config meta saying it reads the as-of day only as the week it falls in.
WEEK_META = "as_of_week"


def shared_digest(project_dir: Path) -> str:
    """SHA-256 over the project files every node may use (SHARED_INPUTS)."""
    return project_digest(project_dir, SHARED_INPUTS)


def as_of_macros(manifest: Mapping) -> set[str]:
    """The macros that read the as-of day, directly or through another macro."""
    macros = manifest.get("macros", {})
    reads: dict[str, bool] = {}

    def visit(macro_id: str) -> bool:
        if macro_id not in reads:
            reads[macro_id] = False  # a cycle reads nothing more
            calls = macros.get(macro_id, {}).get("depends_on", {}).get("macros", [])
            reads[macro_id] = macro_id.rsplit(".", 1)[-1] == AS_OF_MACRO or any(
                visit(m) for m in calls
            )
        return reads[macro_id]

    return {m for m in macros if visit(m)}


def buildable_nodes(manifest: Mapping) -> dict[str, dict]:
    """The manifest's models, seeds and tests, by unique id."""
    return {
        uid: node
        for uid, node in manifest.get("nodes", {}).items()
        if node.get("resource_type") in KEPT_TYPES
    }


def build_order(nodes: Mapping[str, dict]) -> list[str]:
    """The nodes' ids, each after the nodes it reads."""
    graph = {
        uid: {p for p in node.get("depends_on", {}).get("nodes", []) if p in nodes}
        for uid, node in nodes.items()
    }
    return list(graphlib.TopologicalSorter(graph).static_order())


def is_measured(parent: str, prints: Mapping, sources: Mapping, raw: Mapping) -> bool:
    """Whether what a node reads from `parent` is measured: a node with a fingerprint, or
    a raw table."""
    if parent in prints:
        return prints[parent] is not None
    source = sources.get(parent, {})
    return source.get("schema") == RAW_SCHEMA and source.get("identifier") in raw


def node_meta(node: Mapping) -> Mapping:
    return node.get("config", {}).get("meta") or node.get("meta") or {}


def declared_cutoffs(node: Mapping) -> list[dict]:
    """The dates a node declares it cuts at the as-of day (`meta.as_of_cutoffs`)."""
    return list(node_meta(node).get(CUTOFFS_META) or [])


def is_as_of_independent(node: Mapping) -> bool:
    """Whether a node declares it reads no figure counted from the as-of day."""
    return bool(node_meta(node).get(INDEPENDENT_META))


def reads_only_the_week(node: Mapping) -> bool:
    """Whether a node declares it reads the as-of day only as its week (`meta.as_of_week`:
    one row per week up to the as-of week, each counted from the data, not from the day)."""
    return bool(node_meta(node).get(WEEK_META))


def week_of(as_of) -> str:
    """The Monday of the as-of day's week (weeks start on Monday, as the models' weeks)."""
    day = as_of if isinstance(as_of, date) else date.fromisoformat(str(as_of))
    return (day - timedelta(days=day.weekday())).isoformat()


def cutoff_filter(column: str, data_type: str, where: str | None) -> str:
    """The SQL condition of a date that falls within the as-of day ($day: the day, $end:
    the instant it ends), as the models compare it: a date on or before the day, an
    instant before its end."""
    bound = f'"{column}" <= $day' if data_type.upper() == "DATE" else f'"{column}" < $end'
    return f"{bound} AND ({where})" if where else bound


def cutoff_keys(
    con, manifest: Mapping, as_of: date, as_of_end: datetime
) -> dict[str, list[int] | None]:
    """Per node that declares cutoffs: how many of each declared date fall within the as-of
    day, in the order declared (None when a relation it names is not in the warehouse yet:
    the node then counts as reading the day itself)."""
    relations = {
        node["name"]: (node["schema"], node.get("alias") or node["name"])
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") in ("model", "seed")
    }
    keys: dict[str, list[int] | None] = {}
    for uid, node in buildable_nodes(manifest).items():
        entries = declared_cutoffs(node)
        if entries:
            keys[uid] = cutoff_key(con, entries, relations, as_of, as_of_end)
    return keys


def cutoff_key(con, entries: list[dict], relations: Mapping, as_of, as_of_end) -> list[int] | None:
    """The counts of one node's declared dates within the as-of day, one query a relation."""
    counts: dict[int, int] = {}
    by_relation: dict[str, list[int]] = {}
    for n, entry in enumerate(entries):
        by_relation.setdefault(entry["relation"], []).append(n)
    for name, numbers in by_relation.items():
        schema, table = relations.get(name, (None, None))
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ?",
                [schema, table],
            ).fetchall()
        )
        if not types:  # not in the warehouse (yet)
            return None
        filters = [
            cutoff_filter(
                entries[n]["column"], types[entries[n]["column"]], entries[n].get("where")
            )
            for n in numbers
        ]
        sql = (
            "SELECT "
            + ", ".join(f"count(*) FILTER (WHERE {f})" for f in filters)
            + f' FROM "{schema}"."{table}"'
        )
        row = con.execute(sql, used_params(sql, {"day": as_of, "end": as_of_end})).fetchone()
        counts.update(zip(numbers, row, strict=True))
    return [counts[n] for n in range(len(entries))]


def node_fingerprints(
    manifest: Mapping,
    raw: Mapping[str, list],
    shared: Mapping,
    as_of,
    cutoffs: Mapping[str, list[int] | None] | None = None,
) -> dict[str, str | None]:
    """Each buildable node's fingerprint (see the module's docstring), or None for a node
    that reads something not measured here (a table written in Python, or such a node).
    `cutoffs`: cutoff_keys, for the nodes that declare them."""
    cutoffs = cutoffs or {}
    nodes = buildable_nodes(manifest)
    sources = manifest.get("sources", {})
    reads_as_of = as_of_macros(manifest)
    # Besides each fingerprint, the same without the day of figures counted from it
    # (what an as-of independent node reads of its inputs).
    prints: dict[str, str | None] = {}
    steady: dict[str, str | None] = {}
    for uid in build_order(nodes):
        node = nodes[uid]
        parents = node.get("depends_on", {}).get("nodes", [])
        if not all(is_measured(p, prints, sources, raw) for p in parents):
            prints[uid] = steady[uid] = None
            continue
        reads = bool(set(node.get("depends_on", {}).get("macros", [])) & reads_as_of)
        inputs = {
            "node": {k: v for k, v in node.items() if k not in VOLATILE_KEYS},
            "shared": shared,
            "raw": {p: raw[sources[p]["identifier"]] for p in parents if p in sources},
        }
        read = steady if is_as_of_independent(node) else prints
        part = as_of_part(node, reads, as_of, cutoffs)
        prints[uid] = digest(
            {**inputs, "parents": {p: read[p] for p in parents if p in nodes}, "as_of": part}
        )
        # what the node counts from its data stays; the day itself is left out
        steady_part = part if not reads or reads_only_the_week(node) or uid in cutoffs else None
        steady[uid] = digest(
            {
                **inputs,
                "parents": {p: steady[p] for p in parents if p in nodes},
                "as_of": steady_part,
            }
        )
    return prints


def as_of_part(node: Mapping, reads_as_of: bool, as_of, cutoffs: Mapping) -> object:
    """What of the as-of day a node's fingerprint holds: nothing when it does not read it,
    its week when it declares it reads only that, its cutoff key when it declares one that
    could be measured, else the day."""
    if not reads_as_of:
        return None
    if reads_only_the_week(node):
        return {"week": week_of(as_of)}
    key = cutoffs.get(node["unique_id"])
    return {"cutoffs": key} if key is not None else str(as_of)


def ensure_state(con) -> None:
    ensure_state_schema(con)
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (unique_id VARCHAR PRIMARY KEY, "
        "fingerprint VARCHAR NOT NULL, result JSON NOT NULL, built_in VARCHAR NOT NULL)"
    )


def kept_nodes(con, manifest: Mapping, prints: Mapping[str, str | None]) -> dict[str, dict]:
    """The nodes this build can leave as they are, each with its last build's result (its
    `built_in` names that build's dbt folder); the rows of all others are deleted."""
    ensure_state(con)
    stored = {
        uid: (fingerprint, json.loads(result), built_in)
        for uid, fingerprint, result, built_in in con.execute(
            f"SELECT unique_id, fingerprint, result, built_in FROM {STATE_TABLE}"
        ).fetchall()
    }
    nodes = buildable_nodes(manifest)
    kept: dict[str, dict] = {}
    for uid in nodes:
        node, row = nodes[uid], stored.get(uid)
        if row is None or prints.get(uid) is None or row[0] != prints[uid]:
            continue
        if node["resource_type"] != "test" and not table_exists(
            con, f"{node['schema']}.{node.get('alias') or node['name']}"
        ):
            continue
        kept[uid] = {**row[1], "kept_from": row[2]}
    kept = with_their_inputs(nodes, kept)
    gone = [uid for uid in stored if uid not in kept]
    if gone:
        con.execute(f"DELETE FROM {STATE_TABLE} WHERE unique_id IN (SELECT unnest(?))", [gone])
    return kept


def with_their_inputs(nodes: Mapping[str, dict], kept: dict[str, dict]) -> dict[str, dict]:
    """`kept` less every node that reads a node not kept (an as-of independent node aside),
    in build order, so each kept node's inputs are kept too. A test that runs may read a
    kept node beside a rebuilt one (the currency test reads the rebuilt opportunities and
    the kept rates seed): the build excludes with dbt's cautious indirect selection
    (INDIRECT_SELECTION), which leaves out only the tests all of whose parents are
    excluded, so such a test still runs."""
    kept = dict(kept)
    for uid in build_order(nodes):
        node = nodes[uid]
        if uid not in kept or is_as_of_independent(node):
            continue
        parents = [p for p in node.get("depends_on", {}).get("nodes", []) if p in nodes]
        if not all(p in kept for p in parents):
            del kept[uid]
    return kept


# How a build that excludes kept nodes selects tests: with dbt's default (eager), excluding
# a node also leaves out every test that reads it, one that reads a rebuilt node too.
INDIRECT_SELECTION = "cautious"


def indirect_selection(chosen: str | None, excluding: bool) -> str | None:
    """dbt's indirect selection for a build: cautious when it excludes kept nodes, unless
    Dagster selects the tests by name itself (`empty`, a subset of checks)."""
    if excluding and chosen != "empty":
        return INDIRECT_SELECTION
    return chosen


def remember_nodes(
    con, prints: Mapping[str, str | None], results: list[dict], built_in: Path
) -> int:
    """After a build: each node it built, with its fingerprint and result."""
    ensure_state(con)
    rows = [
        (r["unique_id"], prints[r["unique_id"]], json.dumps(r, default=str), str(built_in))
        for r in results
        if r.get("status") in BUILT_STATUSES and prints.get(r["unique_id"])
    ]
    if rows:
        con.executemany(f"INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?, ?, ?, ?)", rows)
    return len(rows)


def forget_nodes(con) -> None:
    """A build this state cannot follow (a full refresh, another engine): keep nothing."""
    con.execute(f"DROP TABLE IF EXISTS {STATE_TABLE}")


def excluded_names(manifest: Mapping, kept: Mapping[str, dict]) -> list[str]:
    """dbt's `--exclude` for the kept nodes (node names are unique within the project)."""
    nodes = manifest.get("nodes", {})
    return sorted(nodes[uid]["name"] for uid in kept)


def write_kept_results(folder: Path, kept: Mapping[str, dict]) -> None:
    """Beside the build's run_results.json, the results it kept (read_artifacts merges them)."""
    if not kept:
        return
    (folder / KEPT_RESULTS_FILE).write_text(
        json.dumps(list(kept.values()), default=str), encoding="utf-8"
    )


def fingerprints_in(
    db: Database, manifest: Mapping, raw: Mapping, shared: Mapping, as_of: date, as_of_end
) -> tuple[dict[str, str | None], bool]:
    """node_fingerprints with the cutoffs counted in the warehouse, and whether every one
    could be (a first build's staging views are there only after it: counted again then)."""
    with db.connect() as con:
        cutoffs = cutoff_keys(con, manifest, as_of, as_of_end)
    prints = node_fingerprints(manifest, raw, shared, as_of, cutoffs)
    return prints, None not in cutoffs.values()


def nodes_to_keep(db: Database, manifest: Mapping, prints: Mapping, full_refresh: bool) -> dict:
    """Before a build: the nodes it keeps (none on a full refresh or without fingerprints,
    another engine's build: then the stored state is dropped)."""
    with db.connect() as con:
        if prints and not full_refresh:
            return kept_nodes(con, manifest, prints)
        forget_nodes(con)
        return {}


def remember_built_nodes(db: Database, prints: Mapping, results: list[dict], built_in: Path) -> int:
    """After a build, in the warehouse: what remember_nodes records."""
    with db.connect() as con:
        return remember_nodes(con, prints, results, built_in)
