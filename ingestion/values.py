"""SQL expressions that parse source text into typed canonical values inside DuckDB.

Parsing runs in DuckDB, not row by row in Python, so a large export costs one scan.
Each builder takes a column reference that ingestion itself generated (``c0``, ``c1``…,
never text from the file) and returns an expression that is NULL when the text is blank
and NULL when it cannot be read; ingestion compares the two to send unreadable values
to the rejects table. The business time zone is the bound parameter ``$tz``.
"""

from __future__ import annotations

from ingestion.schema import (
    AMOUNT,
    AMOUNT_DECIMAL_COMMA,
    BOOLEAN,
    DATE,
    DAY_TIMESTAMP,
    FRACTION,
    HEADCOUNT,
    INTEGER,
    MONTH,
    PERCENT,
    SQL_TYPES,
    TEXT,
    TIMESTAMP,
)

TRUE_WORDS = ("true", "1", "yes", "y", "t", "是", "已删除")
FALSE_WORDS = ("false", "0", "no", "n", "f", "否", "未删除")

# What a user is told a column should look like when a value is rejected.
EXPECTED = {
    TIMESTAMP: "a date and time such as 2025-03-05 14:20, 2025/3/5 14:20, 2025年3月5日 "
    "or 2024-01-22T16:14:25.000+0000",
    DATE: "a date such as 2025-03-05, 2025/3/5 or 2025年3月5日",
    AMOUNT: "an amount such as 8000, 8,000.50, ¥8,000, 8000元 or 12.5万",
    AMOUNT_DECIMAL_COMMA: "an amount with a decimal comma such as 8000, 8.000,50, 12,5 or 8 000,50 €",
    INTEGER: "a whole number such as 250",
    BOOLEAN: "true/false, 1/0, yes/no or 是/否",
    DAY_TIMESTAMP: "a date such as 2025-03-05, 2025/3/5 or 2025年3月5日",
    HEADCOUNT: "a head count such as 250, 100-499人 or 500人以上",
    PERCENT: "a percentage such as 30 or 30%",
    FRACTION: "a fraction such as 0.4",
    MONTH: "a month such as 2026-01, 2026/1 or 2026年1月",
}


class TrimmedText(str):
    """SQL whose value is already blank_to_null's (trimmed, '' as NULL): blank_to_null of it
    is the same value, so it is returned as it is. A column's parser gets the cell as
    blank_to_null made it and trimmed it again, once more for every row (DuckDB's trim is
    not free: the 12 million activity times of the 1M bench, 1 s of the file's 9.8 s insert).
    Any SQL built around it (an f-string) is a plain str again, and trimmed as before."""


def blank_to_null(ref: str) -> str:
    """Trimmed text, with empty strings as NULL: exports write 'no value' as ''."""
    if isinstance(ref, TrimmedText):
        return ref
    return TrimmedText(f"nullif(trim({ref}), '')")


# Dates written with dots, which no locale writes month first: 2025.3.5 (year first, as
# some Chinese and Korean tools write it) and 05.03.2025 (day first, as German, Russian and
# other European exports do). Each becomes year-month-day; rejected before.
DOTTED_DATES = (
    (r"^([0-9]{4})\.([0-9]{1,2})\.([0-9]{1,2})", r"\1-\2-\3"),
    (r"^([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})", r"\3-\2-\1"),
)


def _normalised_datetime_text(ref: str) -> str:
    # 2025年3月5日 14:20 -> 2025-3-5 14:20 ; 2025/3/5 -> 2025-3-5
    return (
        f"replace(replace(replace(replace({blank_to_null(ref)}, '年', '-'), '月', '-'), "
        f"'日', ''), '/', '-')"
    )


def _dots_as_dashes(text: str) -> str:
    """`text` (SQL) with a dotted date at its start written year-month-day (DOTTED_DATES).
    Used only where the usual shapes failed: two regular expressions on every date of a
    million-deal export cost more than reading them."""
    for pattern, replacement in DOTTED_DATES:
        text = f"regexp_replace({text}, '{pattern}', '{replacement}')"
    return text


def _excel_serial(text: str) -> str:
    # Excel serial day numbers (45721 = 2025-03-05), as some tools export date cells.
    return (
        f"CASE WHEN regexp_matches({text}, '^[0-9]{{5}}(\\.[0-9]+)?$') "
        f"THEN TIMESTAMP '1899-12-30' + to_microseconds(CAST(round(CAST({text} AS DOUBLE) "
        f"* 86400000000) AS BIGINT)) END"
    )


# The shapes most exports write their times in, read first with an exact format: a value
# that matches one (2025-03-05 14:20:00, 2025-03-05 14:20, 2025-03-05) is the wall time it
# says, in the business time zone, just as the general reading below would read it.
PLAIN_TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
# And the instants written with their offset the way Salesforce and ISO 8601 write them
# (2024-01-22T16:14:25.000+0000, 2024-01-22T16:14:25+08:00): the offset wins, as it does
# in the general reading.
OFFSET_TIMESTAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S.%g%z", "%Y-%m-%dT%H:%M:%S%z")
# The general reading's name for the normalised text (a lambda parameter, never a column).
_TEXT = "ts_text"


# Epoch milliseconds, as HubSpot's API exports write its date and time properties.
EPOCH_MILLIS = "^1[0-9]{12}$"


def _epoch_instant(text: str) -> str:
    """The instant `text` (epoch milliseconds) stands for."""
    return f"to_timestamp(CAST({text} AS BIGINT) / 1000.0)"


def general_timestamp_sql(text: str) -> str:
    """Timestamp with zone of normalised text `text` (_zone_normalised): an explicit offset
    wins, epoch milliseconds and Excel serial days are read as such, anything else is a
    wall time in the business time zone."""
    return (
        f"(CASE WHEN {text} IS NULL THEN NULL "
        f"WHEN regexp_matches({text}, '([zZ]|[+-][0-9]{{2}}:?[0-9]{{2}})$') "
        f"THEN try_cast({text} AS TIMESTAMPTZ) "
        # epoch milliseconds (HubSpot API exports): an instant, no zone needed
        f"WHEN regexp_matches({text}, '{EPOCH_MILLIS}') THEN {_epoch_instant(text)} "
        f"ELSE timezone($tz, coalesce(try_cast({text} AS TIMESTAMP), {_excel_serial(text)})) END)"
    )


# A zone written after the time, in the shapes other systems print it (the time's last
# digits, then the zone): an offset after a space (Ruby's `2025-03-05 14:20:00 +0800`), an
# offset then its abbreviation (Go's `+0800 CST`), an offset of hours alone (`-05`), or
# UTC / GMT / Z after a space. Each becomes an offset DuckDB reads as an instant; a time
# zone's name (`Europe/Berlin`) is read by DuckDB as it is. Without this, `… UTC` or
# `… Europe/Berlin` was read as a wall time in the business time zone, hours off.
_TIME_END = r"(:[0-9]{2}(\.[0-9]+)?)"
ZONE_SUFFIXES = (
    (_TIME_END + r"\s*([+-][0-9]{2}:?[0-9]{2})(\s+[A-Za-z]{2,5})?$", r"\1\3"),
    (_TIME_END + r"\s*([+-][0-9]{2})$", r"\1\3:00"),
    (_TIME_END + r"\s*(UTC|GMT|[zZ])$", r"\1+00:00"),
)
ZONE_NAME = _TIME_END + r"\s+[A-Za-z]+/[A-Za-z_+-]+(/[A-Za-z_+-]+)?$"


def _zone_normalised(text: str) -> str:
    for pattern, replacement in ZONE_SUFFIXES:
        text = f"regexp_replace({text}, '{pattern}', '{replacement}')"
    return text


def general_reading_sql(ref: str) -> str:
    """What timestamp_sql makes of a value that is not a plain time: a time zone's name at
    the end is read by DuckDB as written (before the dates' slashes become dashes, which
    would turn `Europe/Berlin` into nothing it knows); anything else is normalised (dates,
    ZONE_SUFFIXES) and read by general_timestamp_sql, written once as a lambda's body over
    the normalised text."""
    raw = blank_to_null(ref)
    normalised = _zone_normalised(_dots_as_dashes(_normalised_datetime_text(ref)))
    return (
        f"CASE WHEN regexp_matches({raw}, '{ZONE_NAME}') THEN try_cast({raw} AS TIMESTAMPTZ) "
        f"ELSE list_transform([{normalised}], lambda {_TEXT}: {general_timestamp_sql(_TEXT)})[1] "
        "END"
    )


def timestamp_sql(ref: str) -> str:
    """Timestamp with zone: an explicit offset or zone wins, otherwise the business time zone.

    Values in one of PLAIN_TIMESTAMP_FORMATS or OFFSET_TIMESTAMP_FORMATS are read by that
    format alone; only the others take the general reading (general_reading_sql), written
    once over its text as a lambda's parameter: DuckDB works out a subexpression written
    more than once for every row before the coalesce could skip it, and the normalised text
    appears seven times in it (the 1M bench's 12 million activity times: the file's insert
    11.2-11.5 s -> 9.5-9.8 s)."""
    plain = ", ".join(f"'{f}'" for f in PLAIN_TIMESTAMP_FORMATS)
    offset = ", ".join(f"'{f}'" for f in OFFSET_TIMESTAMP_FORMATS)
    raw = blank_to_null(ref)
    return (
        f"coalesce(timezone($tz, try_strptime({raw}, [{plain}])), "
        f"try_strptime({raw}, [{offset}]), {general_reading_sql(ref)})"
    )


def date_sql(ref: str) -> str:
    """A date stays a date (Salesforce CloseDate): no time-zone shift is applied. A time
    written with it gives its date as written (an ISO time in UTC, its UTC date), and so
    does epoch milliseconds (HubSpot's closedate through its API: the UTC date)."""
    t = _normalised_datetime_text(ref)  # blank: NULL, and so every cast of it
    return (
        f"coalesce(try_cast({t} AS DATE), try_cast(left({t}, 10) AS DATE), "
        f"CASE WHEN regexp_matches({t}, '{EPOCH_MILLIS}') "
        f"THEN CAST(timezone('UTC', {_epoch_instant(t)}) AS DATE) END, "
        f"CAST({_excel_serial(t)} AS DATE), try_cast(left({_dots_as_dashes(t)}, 10) AS DATE))"
    )


def month_sql(ref: str) -> str:
    """A calendar month as its first day: 2026-01, 2026/1, 2026年1月, 202601, or any date
    in the month (2026-01-15)."""
    t = _normalised_datetime_text(ref)
    return (
        f"date_trunc('month', coalesce("
        f"try_cast(regexp_replace(rtrim({t}, '-'), '^([0-9]{{4}})-([0-9]{{1,2}})$', '\\1-\\2-1') AS DATE), "
        f"try_strptime({t}, '%Y%m'), {date_sql(ref)}))"
    )


def day_timestamp_sql(ref: str) -> str:
    """A date-only field used as a moment (Salesforce CloseDate, ActivityDate): midnight of
    that day in the business time zone, so its local date is never shifted."""
    return f"timezone($tz, CAST({date_sql(ref)} AS TIMESTAMP))"


def headcount_sql(ref: str) -> str:
    """Company size as Chinese CRMs export it (100-499人, 500人以上): its first number."""
    return (
        f"try_cast(nullif(regexp_extract(replace({blank_to_null(ref)}, ',', ''), "
        f"'[0-9]+', 0), '') AS BIGINT)"
    )


def ungrouped(text: str, group: str, decimal: str, suffix: str = "") -> str:
    """`text` (SQL, spaces and currency marks already removed) as a plain number: the marks
    of `group` taken out where they group thousands (8,000.50; 1.234.567,89), the `decimal`
    mark written `.`; NULL when a group mark stands anywhere else (12,5 read the US way,
    1,234.56 the European way), so the row is rejected with the column and value named
    instead of loading a number ten to a thousand times off. `suffix`: what may follow
    the digits (万, 亿)."""
    grouped = f"[-+]?[0-9]{{1,3}}([{group}][0-9]{{3}})+([{decimal}][0-9]*)?{suffix}"
    has_group = " OR ".join(f"contains({text}, '{mark}')" for mark in group)

    def point(sql: str) -> str:
        return sql if decimal == "." else f"replace({sql}, '{decimal}', '.')"

    without = f"regexp_replace({text}, '[{group}]', '', 'g')"
    return (
        f"CASE WHEN NOT ({has_group}) THEN {point(text)} "
        f"WHEN regexp_full_match({text}, '{grouped}') THEN {point(without)} END"
    )


def amount_sql(ref: str) -> str:
    """Amounts as exported by CRMs: 8,000 / ¥8,000 / 8000元 / 12.5万 / 1.2亿 (commas only
    as thousands separators: ungrouped)."""
    marked = f"regexp_replace(upper({blank_to_null(ref)}), '[¥￥$\\s元]|RMB|CNY|USD', '', 'g')"
    cleaned = f"({ungrouped(marked, ',，', '.', '[万亿]?')})"
    return (
        f"(CASE WHEN {cleaned} IS NULL THEN NULL "
        f"WHEN {cleaned} LIKE '%万' THEN try_cast(try_cast(rtrim({cleaned}, '万') AS DOUBLE) "
        f"* 10000 AS DECIMAL(18,2)) "
        f"WHEN {cleaned} LIKE '%亿' THEN try_cast(try_cast(rtrim({cleaned}, '亿') AS DOUBLE) "
        f"* 100000000 AS DECIMAL(18,2)) "
        f"ELSE try_cast({cleaned} AS DECIMAL(18,2)) END)"
    )


def amount_decimal_comma_sql(ref: str) -> str:
    """Amounts as European exports write them (a mapping's `decimal_comma: true`):
    1.234,56 / 12,5 / 8 000,50 € / EUR 1.234: the comma is the decimal mark, dots or spaces
    (a no-break space too) group thousands. A dot that does not group thousands makes the
    value unreadable: 1.234 is 1234 here, and 1,234.56 is a reject, not a guess."""
    marked = (
        f"regexp_replace(upper({blank_to_null(ref)}), "
        "'[€$£¥\\s\u00a0\u202f]|EUR|USD|GBP|CHF', '', 'g')"
    )
    return f"try_cast({ungrouped(marked, '.', ',')} AS DECIMAL(18,2))"


def percent_sql(ref: str) -> str:
    """A probability in percent as CRMs show it: 30, 30%, 30.5 %, 30％."""
    cleaned = f"regexp_replace({blank_to_null(ref)}, '[%％\\s]', '', 'g')"
    return f"try_cast(try_cast({cleaned} AS DOUBLE) AS DECIMAL(9,2))"


def fraction_sql(ref: str) -> str:
    """A probability as a fraction (HubSpot's hs_deal_stage_probability 0.4), in percent.

    A UI export may already show it as "40%": a value with a percent sign is read as percent.
    """
    return (
        f"(CASE WHEN {blank_to_null(ref)} LIKE '%\\%%' ESCAPE '\\' OR {blank_to_null(ref)} LIKE '%％' "
        f"THEN {percent_sql(ref)} "
        f"ELSE try_cast(try_cast({blank_to_null(ref)} AS DOUBLE) * 100 AS DECIMAL(9,2)) END)"
    )


def integer_sql(ref: str) -> str:
    """A count (employees, seconds): 1250 or 1,250; 1,5 is unreadable (ungrouped)."""
    cleaned = f"({ungrouped(blank_to_null(ref), ',', '.')})"
    return (
        f"coalesce(try_cast({cleaned} AS BIGINT), "
        f"CASE WHEN try_cast({cleaned} AS DOUBLE) = round(try_cast({cleaned} AS DOUBLE)) "
        f"THEN try_cast(try_cast({cleaned} AS DOUBLE) AS BIGINT) END)"
    )


def boolean_sql(ref: str) -> str:
    word = f"lower({blank_to_null(ref)})"
    trues = ", ".join(f"'{w}'" for w in TRUE_WORDS)
    falses = ", ".join(f"'{w}'" for w in FALSE_WORDS)
    return f"(CASE WHEN {word} IN ({trues}) THEN TRUE WHEN {word} IN ({falses}) THEN FALSE END)"


PARSERS = {
    TEXT: blank_to_null,
    TIMESTAMP: timestamp_sql,
    DATE: date_sql,
    AMOUNT: amount_sql,
    INTEGER: integer_sql,
    BOOLEAN: boolean_sql,
    DAY_TIMESTAMP: day_timestamp_sql,
    HEADCOUNT: headcount_sql,
    PERCENT: percent_sql,
    FRACTION: fraction_sql,
    MONTH: month_sql,
    AMOUNT_DECIMAL_COMMA: amount_decimal_comma_sql,
}


def parse_sql(kind: str, ref: str) -> str:
    """The typed expression for a column of this kind, cast to its canonical SQL type."""
    return f"CAST({PARSERS[kind](ref)} AS {SQL_TYPES[kind]})"
