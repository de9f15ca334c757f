"""``ingest.rows_of``: the rows of a stream record, read at once when every line is a row,
line by line otherwise (anyone may put records on a stream)."""

from __future__ import annotations

import json

from ecomlib.pipelines import ingest


def _line_by_line(data: bytes) -> list[dict]:
    out = []
    for line in data.splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"RowId": None, "Unreadable": line.decode("utf-8", "replace")})
    return out


RECORDS = [
    b'{"InvoiceNo":"536365","Description":"WHITE \\"HEART\\" \xc3\xa9","RowId":"1"}\n'
    b'{"InvoiceNo":"536365","Description":null,"RowId":"2"}\n',
    b'{"RowId":"3"}\r\n\n  \n{"RowId":"4"}',  # blank lines and CRLF
    b'{"RowId":"5"}\nnot json\n{"RowId":"6"}\n',  # one line that is no row
    b'{"RowId":"7"},{"RowId":"8"}\n{"RowId":"9"}\n',  # two objects on one line: not a row
    b'[1, 2]\n{"RowId":"10"}\n',  # an array is no row
    b'{"RowId":"11"}\n\xff\xfe\n',  # not UTF-8
    b'',
]


def test_rows_of_a_record_are_those_read_line_by_line():
    for data in RECORDS:
        assert ingest.rows_of({"Data": data}) == _line_by_line(data), data


def test_a_line_that_is_no_row_is_kept_as_unreadable():
    rows = ingest.rows_of({"Data": RECORDS[2]})
    assert [r["RowId"] for r in rows] == ["5", None, "6"]
    assert rows[1]["Unreadable"] == "not json"
    assert [r.get("RowId") for r in ingest.rows_of({"Data": RECORDS[3]})] == [None, "9"]
