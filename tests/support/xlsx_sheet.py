"""Prints one sheet of a workbook as JSON, a list of rows of cell values, as openpyxl reads it.

Usage: xlsx_sheet.py WORKBOOK SHEET
"""

import json
import sys

import openpyxl


def main(path, name):
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    if name not in book.sheetnames:
        raise SystemExit(f"no sheet {name!r} in {book.sheetnames}")
    rows = [[cell.value for cell in cells] for cells in book[name].iter_rows()]
    json.dump(rows, sys.stdout, default=str)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
