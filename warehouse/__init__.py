"""What every stage needs and none owns: the read-only query door, safe user YAML,
spreadsheet-safe CSV and path-safe names. It imports no stage; every stage may import it."""
