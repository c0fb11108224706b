"""Reads a KT-XH report workbook with openpyxl and prints the Targets sheet as JSON:
{"INDICATOR": {"status": ..., "actual": ..., "expected": ..., "projection": ..., "last_year": ...,
"change": ..., "of_plan": ..., "formats": {"actual": "#,##0", ...}}}.

The sheet is found by its header row (the cell "Code" in column B), not by position, so the
test fails if the workbook's layout drifts from what its readers expect. Each figure's number
format comes along, so a test can check how a spreadsheet program will show it.
"""

import json
import sys

import openpyxl

COLUMNS = {"Code": "code", "Actual": "actual", "Expected by now": "expected",
           "Year projection": "projection", "Status": "status",
           "Same period last year": "last_year", "Change on last year": "change",
           "% of year target": "of_plan"}
NUMBERS = ("actual", "expected", "projection", "last_year", "change", "of_plan")


def main(path):
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    sheet = book["Targets"]
    header = None
    out = {}
    for cells in sheet.iter_rows():
        row = [cell.value for cell in cells]
        if header is None:
            if "Code" in row:
                header = {COLUMNS[name]: i for i, name in enumerate(row) if name in COLUMNS}
                missing = set(COLUMNS.values()) - set(header)
                if missing:
                    raise SystemExit(f"the Targets sheet has no column for {sorted(missing)}")
            continue
        code = row[header["code"]]
        if not code:
            continue
        figures = {key: row[i] for key, i in header.items() if key != "code"}
        for key in NUMBERS:
            value = figures[key]
            if value is not None and not isinstance(value, (int, float)):
                raise SystemExit(f"{code}: {key} is stored as {type(value).__name__}, not a number")
        figures["formats"] = {
            key: getattr(cells[header[key]], "number_format", None) for key in NUMBERS
        }
        out[code] = figures
    if header is None:
        raise SystemExit("no header row with a Code column in the Targets sheet")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
