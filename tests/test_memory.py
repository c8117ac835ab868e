"""DuckDB gives its memory back while a step works in pandas alone (memory_lowered): what
keeps a ten-million-deal forecast within the run's memory budget."""

from __future__ import annotations

from warehouse.database import Limits, connect, memory_lowered, size_bytes


def used_bytes(con) -> int:
    return con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchall()[0][0]


def test_duckdb_holds_less_in_the_block_and_its_own_limit_after(tmp_path):
    limits = Limits("1GB", tmp_path / "spill")
    with connect(tmp_path / "w.duckdb", limits=limits) as con:
        con.execute(
            "CREATE TEMP TABLE deals AS SELECT i, md5(i::VARCHAR) AS id, random() AS p "
            "FROM range(3000000) t(i)"
        )
        expected = con.execute("SELECT count(*), sum(i) FROM deals").fetchall()
        before = used_bytes(con)
        assert before > 150 * 2**20  # the temp table is in memory
        with memory_lowered(con, limits.memory_limit, limit="32MB"):
            assert used_bytes(con) <= 32 * 2**20
            assert any((tmp_path / "spill").iterdir())  # written to the spill folder
        setting = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        assert setting == "953.6 MiB"  # 1GB again, as DuckDB prints it
        # the temp table is whole
        assert con.execute("SELECT count(*), sum(i) FROM deals").fetchall() == expected


def test_nothing_is_lowered_when_the_limit_is_not_known(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        setting = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        with memory_lowered(con, None, limit="32MB"):
            assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == setting


def test_a_limit_already_lower_is_never_raised(tmp_path):
    limits = Limits("256MB", tmp_path / "spill")
    with (
        connect(tmp_path / "w.duckdb", limits=limits) as con,
        memory_lowered(con, limits.memory_limit, limit="2GB"),
    ):
        setting = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        assert setting == "244.1 MiB"  # still 256MB, not 2GB


def test_sizes_read_as_duckdb_reads_them():
    assert size_bytes("4GB") == size_bytes("4G") == size_bytes("4 gb") == 4 * 1000**3
    assert size_bytes("3.5GiB") == int(3.5 * 1024**3)
    assert size_bytes("512MB") == 512 * 1000**2
    assert size_bytes("80%") is None  # a share of the machine: left as it is


def test_a_step_s_text_columns_are_allocated_by_glibc_unless_the_user_chose(tmp_path, monkeypatch):
    """Arrow (pandas' text) allocates from the system's malloc once a step connects, where
    give_back_freed_memory returns it; a pool the user named in ARROW_DEFAULT_MEMORY_POOL
    is left as it is."""
    import pyarrow as pa

    from warehouse.database import ARROW_POOL_ENV, Database

    before = pa.default_memory_pool()
    try:
        pa.set_memory_pool(pa.mimalloc_memory_pool())
        monkeypatch.setenv(ARROW_POOL_ENV, "mimalloc")
        Database(tmp_path / "w.duckdb").connect().close()
        assert pa.default_memory_pool().backend_name == "mimalloc"
        monkeypatch.delenv(ARROW_POOL_ENV)
        Database(tmp_path / "w.duckdb").connect().close()
        assert pa.default_memory_pool().backend_name == "system"
        assert pa.array(["商机"] * 3).to_pylist() == ["商机"] * 3
    finally:
        pa.set_memory_pool(before)
