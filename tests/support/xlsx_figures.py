"""Reads a KT-XH report workbook with openpyxl and prints the Targets sheet as JSON:
{"INDICATOR": {"status": ..., "actual": ..., "expected": ..., "projection": ...}}.

The sheet is found by its header row (the cell "Code" in column B), not by position, so the
test fails if the workbook's layout drifts from what its readers expect.
"""

import json
import sys

import openpyxl

COLUMNS = {"Code": "code", "Actual": "actual", "Expected by now": "expected",
           "Year projection": "projection", "Status": "status"}


def main(path):
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    sheet = book["Targets"]
    header = None
    out = {}
    for row in sheet.iter_rows(values_only=True):
        if header is None:
            if "Code" in row:
                header = {COLUMNS[name]: i for i, name in enumerate(row) if name in COLUMNS}
            continue
        code = row[header["code"]]
        if not code:
            continue
        figures = {key: row[i] for key, i in header.items() if key != "code"}
        for key in ("actual", "expected", "projection"):
            value = figures[key]
            if value is not None and not isinstance(value, (int, float)):
                raise SystemExit(f"{code}: {key} is stored as {type(value).__name__}, not a number")
        out[code] = figures
    if header is None:
        raise SystemExit("no header row with a Code column in the Targets sheet")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
