"""`oppwh bench`: the daily job at scale, timed against DuckDB alone (the floor)."""
