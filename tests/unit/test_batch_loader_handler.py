"""Unit tests of ``lambda_src/batch_loader/handler.py``'s reading of files, without AWS.

The whole function (S3, DynamoDB, the warehouse, the schedule) is tested on the embedded
AWS in test_batch_pipeline.py.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest
from ecomlib.deploy import load_handler

REPO = Path(__file__).resolve().parents[2]




H = load_handler("batch_loader")  # as in its deployment package: `shared` importable
BF = sys.modules["shared.bulk_files"]  # reading files line by line, shared out of the handler
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country".split(",")


@pytest.mark.parametrize("data, at_end, expected", [
    (b"a\nb\n", True, [(b"a", 2), (b"b", 2)]),
    (b"a\nb", True, [(b"a", 2), (b"b", 1)]),  # the file's last line has no line end
    (b"a\nb", False, [(b"a", 2)]),  # "b" may go on in the next chunk
    (b"a\r\nb\r\n", False, [(b"a", 3), (b"b", 3)]),  # CRLF: \r is not part of the line
    (b'a\n"x\ny"\nz', False, [(b"a", 2), (b'"x\ny"', 6)]),  # a line end inside quotes
    (b'a\n"x\ny', False, [(b"a", 2)]),  # the quoted field goes on past the chunk
    (b'"abc', True, [(b'"abc', 4)]),  # an unterminated quote at the end: the CSV reader judges
    (b"a\n\nb\n", True, [(b"a", 2), (b"", 1), (b"b", 2)]),  # a blank line is kept (and skipped later)
    (b"", True, []),
    (b"no line end yet", False, []),
])
def test_split_lines_keeps_whole_lines_and_their_sizes(data, at_end, expected):
    lines = H.split_lines(data, at_end, quoted=True)
    assert lines == expected
    assert sum(size for _, size in lines) <= len(data)


def test_json_lines_ignore_quotes():
    assert H.split_lines(b'{"a": "\\""}\n{"b": 1}\n', False, quoted=False) == [(b'{"a": "\\""}', 12), (b'{"b": 1}', 9)]


def test_csv_values_become_typed_rows():
    row = BF.csv_row(["536365", "85123A", "", "6", "12/1/2010 8:26", "2.55", "", "United Kingdom"], HEADER)
    assert row["Quantity"] == 6 and row["UnitPrice"] == Decimal("2.55")
    assert row["Description"] is None and row["CustomerID"] is None
    clean, reason = H.validate_row(row, "f.csv:1")
    assert reason is None and clean["InvoiceDate"] == "2010-12-01T08:26:00" and clean["RowId"] == "f.csv:1"


@pytest.mark.parametrize("values, reason", [
    (["1", "A", "x", "six", "12/1/2010 8:26", "2.5", "1", "UK"], "Quantity must be an integer, got 'six'"),
    (["1", "A", "x", "6", "12/1/2010 8:26", "cheap", "1", "UK"], "UnitPrice must be a number, got 'cheap'"),
    (["1", "A", "x", "6", "31/12/2010 8:26", "2.5", "1", "UK"], "InvoiceDate is not a real date"),
    (["1", "A", "x", "6", "12/1/2010 8:26", "2.5", "1", ""], "Country must not be empty"),
])
def test_bad_csv_values_are_rejected_with_the_apis_reasons(values, reason):
    _, why = H.validate_row(BF.csv_row(values, HEADER), "f.csv:1")
    assert why.startswith(reason)


def test_a_record_with_the_wrong_number_of_fields_says_so():
    assert BF.csv_row(["1", "2"], HEADER) == "has 2 fields, the header has 8"


def test_parse_lines_marks_blank_lines_and_bad_json():
    rows = H.parse_lines([b'{"InvoiceNo": "1"}', b"", b"{oops"], "jsonl", None)
    assert rows[0] == {"InvoiceNo": "1"} and rows[1] is None and rows[2].startswith("line is not JSON")


def test_latin1_and_utf8_are_both_read():
    assert BF.decode("£".encode("utf-8")) == "£"
    assert BF.decode("£".encode("iso-8859-1")) == "£"


def test_header_must_name_the_online_retail_columns():
    header, size = H.read_header(b"\xef\xbb\xbf" + ",".join(HEADER).encode() + b",RowId\r\n1,2", False, "f.csv")
    assert header == HEADER + ["RowId"] and size == 3 + len(",".join(HEADER)) + len(",RowId\r\n")
    with pytest.raises(H.FileRefused, match="the header has no Quantity, UnitPrice"):
        H.read_header(b"InvoiceNo,StockCode,Description,InvoiceDate,CustomerID,Country\n", False, "f.csv")
    with pytest.raises(H.FileRefused, match="no header"):
        H.read_header(b"", True, "f.csv")


def test_the_last_invoice_of_a_chunk_waits_for_the_next_chunk():
    rows = [{"InvoiceNo": "1"}, {"InvoiceNo": "2"}, {"InvoiceNo": "2"}]
    assert H.hold_back_last_invoice(rows) == 2
    assert H.hold_back_last_invoice([{"InvoiceNo": "2"}, {"InvoiceNo": "2"}]) == 0  # all one invoice: keep it
    assert H.hold_back_last_invoice([{"InvoiceNo": "1"}, "bad row"]) == 0


def test_file_kinds_and_default_row_ids():
    assert [H.file_kind(n) for n in ("a.CSV", "b.jsonl", "c.json", "d.ndjson", "e.txt")] == ["csv", "jsonl", "jsonl", "jsonl", None]
    assert H.default_row_id("online_retail_2011-01.csv", 17) == "online_retail_2011-01.csv:17"
    assert len(H.default_row_id("x" * 200 + ".csv", 10**9)) <= 64


def test_merge_is_one_idempotent_transaction():
    settings = H.load_settings({"BUCKET": "b", "INVOICES_TABLE": "i", "CUSTOMERS_TABLE": "c", "CLUSTER_ID": "w",
                                "DATABASE": "dev", "DB_USER": "u", "WAREHOUSE_TABLE": "t",
                                "JSONPATHS": "s3://b/batch/config/jsonpaths.json", "COPY_ROLE_ARN": "arn:role"})
    sql = H.merge_sql(settings, "s3://b/batch/staging/f/00000.json")
    assert sql[0] == "CREATE TEMP TABLE batch_stage (LIKE t)"
    assert sql[1].startswith("COPY batch_stage FROM 's3://b/batch/staging/f/00000.json' IAM_ROLE 'arn:role' JSON 's3://b/")
    assert "DELETE FROM t USING batch_stage WHERE t.row_id = batch_stage.row_id" in sql
    assert sql.index("INSERT INTO t SELECT * FROM batch_stage") > 2


def test_missing_settings_are_named():
    with pytest.raises(RuntimeError, match="set BUCKET, INVOICES_TABLE"):
        H.load_settings({"CUSTOMERS_TABLE": "c"})


def test_budget_stops_before_time_or_chunks_run_out():
    left = [60_000]
    budget = H.Budget(lambda: left[0], max_chunks=2)
    assert budget.allows_another_chunk()
    budget.spent(8.0)  # a chunk took 8 s: keep 16 s in hand
    left[0] = 15_000
    assert budget.exhausted() and not budget.allows_another_chunk()
    left[0] = 17_000
    assert not budget.exhausted() and not budget.exhausted()  # looking counts nothing
    assert budget.allows_another_chunk()
    budget.spent(1.0)
    assert budget.exhausted() and not budget.allows_another_chunk()  # two chunks done


# ---- a possibly-missing object under a ListBucket policy with an s3:prefix condition -------------


def _stubbed_files(monkeypatch):
    """Files whose S3 client is stubbed (botocore's Stubber: the responses S3 gives)."""
    from types import SimpleNamespace

    import boto3
    from botocore.stub import Stubber

    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    stubber = Stubber(s3)
    monkeypatch.setattr(BF, "client", lambda service, *args, **kwargs: s3)
    files = BF.Files(SimpleNamespace(bucket="ecom-batch", prefix="batch/"), "orders.csv")
    return files, stubber


def test_a_missing_state_file_answered_403_is_missing(monkeypatch):
    """S3 GetObject (Permissions): without s3:ListBucket on the key (the role may list only
    with an s3:prefix condition, which GetObject does not carry) a missing key is 403
    AccessDenied, not 404 NoSuchKey; the loader lists the key to tell missing from forbidden."""
    files, stubber = _stubbed_files(monkeypatch)
    stubber.add_client_error("get_object", service_error_code="AccessDenied", service_message="Access Denied",
                             http_status_code=403, expected_params={"Bucket": "ecom-batch", "Key": files.state})
    stubber.add_response("list_objects_v2", {"KeyCount": 0},
                         {"Bucket": "ecom-batch", "Prefix": files.state, "MaxKeys": 1})
    with stubber:
        assert files.get_json(files.state) is None
    stubber.assert_no_pending_responses()


def test_an_existing_file_answered_403_is_a_real_refusal(monkeypatch):
    from botocore.exceptions import ClientError

    files, stubber = _stubbed_files(monkeypatch)
    stubber.add_client_error("get_object", service_error_code="AccessDenied", service_message="Access Denied",
                             http_status_code=403)
    stubber.add_response("list_objects_v2", {"KeyCount": 1, "Contents": [{"Key": files.state}]})
    with stubber, pytest.raises(ClientError, match="AccessDenied"):
        files.get_json(files.state)


def test_a_missing_file_answered_404_is_missing(monkeypatch):
    files, stubber = _stubbed_files(monkeypatch)
    stubber.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404)
    with stubber:
        assert files.get_json(files.state) is None
