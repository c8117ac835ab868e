"""A corpus of broken and hostile export files (more than 30), each with what must happen."""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook

H = "opportunity_id,opportunity_name,amount,created_at,stage,status,loss_reason\n"
GOOD = "G-1,正常商机,10000,2025-05-01 10:00,初步接触,进行中,\n"


def _w(folder: Path, name: str, data: bytes | str, encoding: str = "utf-8") -> None:
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))


def write_corpus(folder: Path) -> dict[str, str]:
    """Write the corpus; returns file name -> expected ledger status."""
    folder.mkdir(parents=True, exist_ok=True)
    expect: dict[str, str] = {}

    def add(name, data, status, encoding="utf-8"):
        _w(folder, name, data, encoding)
        expect[name] = status

    add("01_empty.csv", b"", "failed")
    add("02_header_only.csv", H, "loaded")
    # A row that cannot be read is rejected, the rest of the file loads.
    add("03_truncated.csv", H + GOOD + 'T-2,"半截', "loaded")
    add("04_binary_renamed.csv", bytes(range(256)) * 4, "failed")
    add("05_nul_bytes.csv", (H + GOOD).encode() + b"\x00\x00" + GOOD.encode(), "failed")
    add(
        "06_duplicate_headers.csv",
        "opportunity_id,amount,amount,created_at\nD-1,1,2,2025-05-01\n",
        "loaded",
    )
    add("07_blank_headers.csv", "opportunity_id,,created_at,\nB-1,x,2025-05-01,y\n", "loaded")
    add("08_missing_required.csv", "opportunity_id,amount\nM-1,100\n", "set_aside")
    add(
        "09_extra_columns.csv",
        H.strip() + ",我的字段,another\n" + GOOD.strip() + ",值,v\n",
        "loaded",
    )
    add(
        "10_mixed_line_endings.csv",
        (H + GOOD).replace("\n", "\r\n") + "L-2,混合,1,2025-05-02,初步接触,进行中,\n",
        "loaded",
    )
    add(
        "11_broken_quotes.csv",
        H + 'Q-1,"unclosed quote,1,2025-05-01,初步接触,进行中,\n' + GOOD,
        "set_aside",  # the open quote swallows the file's only other row: nothing readable
    )
    add(
        "12_impossible_dates.csv",
        H + "I-1,坏日期,1,2025-02-30 10:00,初步接触,进行中,\n" + GOOD.replace("G-1", "I-2"),
        "loaded",
    )
    add("13_far_future.csv", H + "F-1,未来,1,2199-01-01 10:00,初步接触,进行中,\n", "loaded")
    add("14_negative_amount.csv", H + "N-1,负数,-5000,2025-05-01,初步接触,进行中,\n", "loaded")
    add(
        "15_absurd_amount.csv",
        H + "A-1,离谱,999999999999999,2025-05-01,初步接触,进行中,\n",
        "loaded",
    )
    add(
        "16_megabyte_cell.csv",
        H + "C-1," + "长" * 400_000 + ",1,2025-05-01,初步接触,进行中,\n",
        "loaded",
    )
    add(
        "17_formula_names.csv",
        H
        + 'X-1,"=HYPERLINK(""http://evil"",""x"")",1,2025-05-01,输单,输单,"+cmd|\' /C calc\'!A0"\n'
        + "X-2,@SUM(1+1),1,2025-05-01,输单,输单,-2+3\n",
        "loaded",
    )
    add(
        "18_gbk.csv",
        H + "K-1,国标编码商机,1,2025-05-01,初步接触,进行中,\n",
        "loaded",
        encoding="gbk",
    )
    add("19_utf8_bom.csv", "\ufeff" + H + GOOD.replace("G-1", "U-1"), "loaded")
    add(
        "20_mixed_encodings.csv",
        (H + "E-1,中文,1,2025-05-01,初步接触,进行中,\n").encode("utf-8")
        + "E-2,国标,1,2025-05-01,初步接触,进行中,\n".encode("gbk"),
        "failed",
    )
    add("21_utf16.csv", (H + GOOD).encode("utf-16"), "failed")
    add(
        "22_bad_amount_rows.csv",
        H + "R-1,ok,100,2025-05-01,初步接触,进行中,\nR-2,bad,一百块,2025-05-01,初步接触,进行中,\n",
        "loaded",
    )
    add(
        "23_every_row_bad.csv",
        H + "W-1,x,1,yesterday,初步接触,进行中,\nW-2,y,1,soon,初步接触,进行中,\n",
        "set_aside",
    )
    add(
        "24_semicolon.csv",
        H.replace(",", ";") + GOOD.replace(",", ";").replace("G-1", "S-1"),
        "loaded",
    )
    add("25_not_a_table.txt", "Just some notes about deals.\nNothing tabular here.\n", "set_aside")
    add(
        "26_duplicate_ids.csv",
        H + "P-1,a,1,2025-05-01,初步接触,进行中,\nP-1,b,2,2025-05-01,方案报价,进行中,\n",
        "blocked",
    )
    add("27_exact_duplicate_rows.csv", H + GOOD.replace("G-1", "EX-1") * 2, "loaded")
    add("28_unknown_stage.csv", H + "US-1,x,1,2025-05-01,签约成交,进行中,\n", "loaded")
    add(
        "29_whitespace_values.csv",
        H + '  WS-1  ,  空格  ," 1,000 ", 2025-05-01 10:00 ,初步接触, 进行中 ,\n',
        "loaded",
    )
    add(
        "30_json_lines_broken.jsonl",
        '{"activity_id": "a1", "occurred_at": "2025-05-01"}\n{broken\n',
        "failed",
    )
    add(
        "31_jsonl_ok.jsonl",
        '{"activity_id": "a1", "occurred_at": "2025-05-01 10:00", "activity_type": "电话"}\n',
        "loaded",
    )
    book = Workbook()
    sheet = book.active
    sheet.title = "商机"
    sheet.append(["商机编号", "商机名称", "创建时间", "预计成交金额", None])
    sheet.merge_cells("D1:E1")
    sheet.append(["XL-1", "表格商机", "2025/5/1", "3万", "x"])
    other = book.create_sheet("说明")
    other.append(["仅供参考"])
    book.save(folder / "32_workbook.xlsx")
    expect["32_workbook.xlsx » 商机"] = "loaded"
    expect["32_workbook.xlsx » 说明"] = "set_aside"
    add("33_fake.xlsx", b"this is not a zip file at all", "failed")
    return expect
