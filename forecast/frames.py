"""DuckDB query results as compact pandas frames: the forecast reads millions of history
rows whose text columns hold a handful of distinct values."""

from __future__ import annotations

import duckdb
import pyarrow as pa

# Rows of a history frame read from DuckDB at a time (each batch's text encoded before the
# next is read: at ten million deals the stage history is some 30 million rows).
CODED_BATCH_ROWS = 1_000_000


def coded_frame(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict | None = None,
    categories: bool = True,
):
    """A query's rows with its text columns as categories: the history frames hold millions
    of rows with a handful of distinct sources, stages and customer types, and strings
    made them three times slower to read and to group. Read a batch at a time, so the
    text of all rows is never held at once.

    `categories` False: text columns as plain object columns (they group and sort as text),
    each distinct value still one Python string that its rows share."""
    reader = con.sql(sql, params=params).to_arrow_reader(CODED_BATCH_ROWS)
    batches = [_encoded(batch) for batch in reader]
    if not batches:  # no rows: the same columns, empty
        batches = [_encoded(pa.RecordBatch.from_pylist([], schema=reader.schema))]
    frame = pa.Table.from_batches(batches).unify_dictionaries().to_pandas()
    if not categories:
        for name in frame.columns[frame.dtypes == "category"]:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def _encoded(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with its text columns dictionary-encoded."""
    columns = [
        column.dictionary_encode() if pa.types.is_string(column.type) else column
        for column in batch.columns
    ]
    return pa.record_batch(columns, names=batch.schema.names)
