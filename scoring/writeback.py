"""Write-back files the CRM imports as updates: the source's own id and field names.

Per source system, in DATA_DIR/exports/<source>/ (a safe folder name, see
warehouse.safe_names): a dated full file, a stable
`priority_latest.csv`, and a delta (only deals whose grade changed, or are new) as CSV and
XLSX. CSVs are UTF-8 with BOM (Excel and Chinese CRMs open them without mojibake).
Free text a spreadsheet would run as a formula is neutralised; the record id is written
byte for byte, so the import matches its record (warehouse.spreadsheet_safe).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from scoring.config import ScoringConfig
from scoring.xlsx import write_xlsx
from warehouse.database import Database
from warehouse.safe_names import folder_name
from warehouse.spreadsheet_safe import neutralise, safe_rows, write_safe_csv

XLSX_MAX_ROWS = 1_048_576  # Excel's limit, header included


NOT_WRITTEN = "NOT_WRITTEN.txt"


def not_written_text(source: str, why: str, as_of: date) -> str:
    """Why a source's grades were not written, and how to write them anyway."""
    return (
        f"Priority grades for source '{source}' were not written on {as_of}.\n"
        f"商机优先级未回写（{as_of}，来源 {source}）。\n\n"
        f"Why / 原因: the backtest on past deals is no better than chance: {why}\n"
        "The scores are still in marts.opportunity_priority; marts.scoring_validation has the "
        "figures (oppwh score --backtest prints them).\n"
        "评分仍在 marts.opportunity_priority 中；回测数据见 marts.scoring_validation。\n\n"
        "To write them anyway / 如仍需回写: copy scoring/scoring.yml to DATA_DIR/scoring.yml "
        "and set\n    writeback_gate: always\n"
    )


@dataclass
class WritebackResult:
    files: list[Path]
    messages: list[str]


def _atomic_csv(frame: pd.DataFrame, path: Path, id_column: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8-sig", newline="") as handle:
        write_safe_csv(frame, handle, id_columns=(id_column,))
    os.replace(tmp, path)


def _xlsx(
    frame: pd.DataFrame, path: Path, id_column: str, max_rows: int = XLSX_MAX_ROWS
) -> tuple[list[Path], str]:
    """One workbook, or several when the rows exceed Excel's sheet limit (said in the message)."""
    per_file = max_rows - 1
    chunks = [frame.iloc[i : i + per_file] for i in range(0, max(len(frame), 1), per_file)]
    paths, message = [], ""
    if len(chunks) > 1:
        message = (
            f"{path.name}: {len(frame):,} rows exceed Excel's {max_rows:,}-row sheet limit; "
            f"split into {len(chunks)} files (the CSV holds every row in one file)"
        )
    for n, chunk in enumerate(chunks, start=1):
        target = path if len(chunks) == 1 else path.with_name(f"{path.stem}_part{n}{path.suffix}")
        tmp = target.with_name(f".{target.name}.tmp")
        write_xlsx(
            tmp,
            [neutralise(c) for c in frame.columns],
            safe_rows(chunk, id_columns=(id_column,)),
            sheet="priority",
        )
        os.replace(tmp, target)
        paths.append(target)
    return paths, message


_CJK = re.compile(r"[\u4e00-\u9fff]")


def writes_chinese(rows: pd.DataFrame) -> bool:
    """Whether a source's users write Chinese: most of its deal names hold Chinese
    characters (its write-back file then gets Chinese field names)."""
    names = rows.get("opportunity_name")
    if names is None or names.dropna().empty:
        return True
    return names.dropna().astype(str).str.contains(_CJK).mean() >= 0.5


def export_frame(rows: pd.DataFrame, fields: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            fields["id"]: rows["opportunity_id"].astype(str),
            fields["grade"]: rows["grade"],
            fields["score"]: rows["score"].astype(float),
            fields["reasons"]: rows["reasons"],
        }
    )


def _after(path: Path, files: list[Path], after_file) -> None:
    files.append(path)
    if after_file is not None:
        after_file(path)


def write_exports(
    today: pd.DataFrame,
    exports_dir: Path,
    as_of: date,
    config: ScoringConfig,
    xlsx_max_rows: int = XLSX_MAX_ROWS,
    after_file=None,
    withheld: dict[str, str] | None = None,
) -> WritebackResult:
    """Per source, the files its CRM imports; for a source whose grades did not pass their
    backtest (`withheld`: source -> why), NOT_WRITTEN.txt instead, and no current file."""
    files: list[Path] = []
    messages: list[str] = []
    stamp = as_of.strftime("%Y%m%d")
    withheld = withheld or {}
    for source, rows in today.groupby("source_system", sort=True):
        folder = exports_dir / folder_name(str(source))
        folder.mkdir(parents=True, exist_ok=True)
        note = folder / NOT_WRITTEN
        if str(source) in withheld:
            (folder / "priority_latest.csv").unlink(missing_ok=True)
            note.write_text(not_written_text(str(source), withheld[str(source)], as_of), "utf-8")
            files.append(note)
            messages.append(f"{source}: write-back withheld / 未回写 ({withheld[str(source)]})")
            continue
        note.unlink(missing_ok=True)
        fields = config.writeback_fields(str(source), writes_chinese(rows))
        rows = rows.sort_values(["grade", "score"], ascending=[True, False])
        full = export_frame(rows, fields)
        dated, latest = folder / f"priority_{stamp}.csv", folder / "priority_latest.csv"
        _atomic_csv(
            full, dated, fields["id"]
        )  # written once, then copied: the two files are identical
        _after(dated, files, after_file)
        tmp = latest.with_name(f".{latest.name}.tmp")
        shutil.copyfile(dated, tmp)
        os.replace(tmp, latest)
        _after(latest, files, after_file)
        changed = rows[rows["previous_grade"].isna() | (rows["previous_grade"] != rows["grade"])]
        delta = export_frame(changed, fields)
        _atomic_csv(delta, folder / f"priority_delta_{stamp}.csv", fields["id"])
        files.append(folder / f"priority_delta_{stamp}.csv")
        paths, message = _xlsx(
            delta, folder / f"priority_delta_{stamp}.xlsx", fields["id"], xlsx_max_rows
        )
        files.extend(paths)
        if message:
            messages.append(message)
    return WritebackResult(files, messages)


def read_grades(db: Database) -> tuple[pd.DataFrame, dict[str, str]]:
    """Today's grades to write back, and the sources withheld by their backtest (with why)."""
    with db.connect(read_only=True) as con:
        today = con.execute(
            "SELECT source_system, opportunity_id, opportunity_name, score, grade, reasons, "
            "previous_grade FROM marts.opportunity_priority"
        ).df()
        withheld = dict(
            con.execute(
                "SELECT source_system, why FROM marts.scoring_validation "
                "WHERE writeback_status = 'withheld'"
            ).fetchall()
        )
    return today, withheld
