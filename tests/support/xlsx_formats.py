"""Prints every number cell of a workbook, on every sheet, with the number format a
spreadsheet program will show it in, as JSON: [{"sheet", "cell", "value", "format"}].

Usage: xlsx_formats.py WORKBOOK
"""

import json
import sys

import openpyxl


def main(path):
    book = openpyxl.load_workbook(path, data_only=True)
    cells = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool):
                    cells.append({"sheet": sheet.title, "cell": cell.coordinate,
                                  "value": cell.value, "format": cell.number_format})
    json.dump(cells, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
