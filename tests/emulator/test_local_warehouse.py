"""The local Redshift warehouse behind the Redshift Data API (``ecomlib.local.redshift_data``).

Everything goes through boto3 against the embedded AWS, as a notebook would: statements
are submitted, polled with DescribeStatement and read with GetStatementResult.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ecomlib import aws, data
from ecomlib.config import settings
from ecomlib.local import server
from ecomlib.local import redshift_data as local_warehouse

TABLE_DDL = """CREATE TABLE firehose_transactions (
    invoice_no VARCHAR(20), stock_code VARCHAR(20), description VARCHAR(256), quantity INTEGER,
    invoice_date TIMESTAMP, unit_price DECIMAL(10,3), customer_id VARCHAR(20), country VARCHAR(64),
    row_id VARCHAR(64))"""
JSONPATHS = ["$['InvoiceNo']", "$.StockCode", "$.Description", "$.Quantity", "$.InvoiceDate",
             "$.UnitPrice", "$.CustomerID", "$.Country", "$.RowId"]
ROLE = "arn:aws:iam::123456789012:role/ecom-redshift-copy"
DONE = ("FINISHED", "FAILED", "ABORTED")


# ---- a user's way of running SQL through the Data API -------------------------------


def run(cluster: str, sql: str, parameters: dict | None = None, database: str = "dev",
        timeout: float = 60) -> dict:
    """execute_statement, poll describe_statement, then read every page of the result.

    Returns {"status", "error", "described", "columns", "records", "pages"}.
    """
    rd = aws.client("redshift-data")
    kwargs = dict(ClusterIdentifier=cluster, Database=database, DbUser="awsuser", Sql=sql)
    if parameters:
        kwargs["Parameters"] = [{"name": k, "value": str(v)} for k, v in parameters.items()]
    statement_id = rd.execute_statement(**kwargs)["Id"]
    return wait(statement_id, timeout)


def wait(statement_id: str, timeout: float = 60) -> dict:
    rd = aws.client("redshift-data")
    deadline = time.monotonic() + timeout
    while True:
        described = rd.describe_statement(Id=statement_id)
        if described["Status"] in DONE:
            break
        assert time.monotonic() < deadline, f"statement still {described['Status']}"
        time.sleep(0.05)
    out = {"status": described["Status"], "error": described.get("Error"), "described": described,
           "columns": [], "records": [], "pages": 0}
    if described["Status"] == "FINISHED" and described.get("HasResultSet") and "SubStatements" not in described:
        token = None
        while True:
            page = rd.get_statement_result(Id=statement_id, **({"NextToken": token} if token else {}))
            out["columns"] = out["columns"] or page["ColumnMetadata"]
            out["records"] += page["Records"]
            out["pages"] += 1
            token = page.get("NextToken")
            if not token:
                break
    return out


def sql(cluster: str, text: str, parameters: dict | None = None) -> dict:
    """Run a statement that must succeed."""
    out = run(cluster, text, parameters)
    assert out["status"] == "FINISHED", out["error"]
    return out


def value(field: dict):
    """The value of a Data API field (isNull -> None)."""
    assert len(field) == 1, field
    kind, content = next(iter(field.items()))
    return None if kind == "isNull" else content


def rows(out: dict) -> list[list]:
    return [[value(f) for f in record] for record in out["records"]]


def scalar(cluster: str, text: str, parameters: dict | None = None):
    return rows(sql(cluster, text, parameters))[0][0]


# ---- fixtures ------------------------------------------------------------------------


def _create_cluster(name: str) -> None:
    """A cluster that may assume ROLE in COPY (attached, and trusting Redshift, as AWS requires)."""
    iam = aws.client("iam")
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName=ROLE.split("/")[-1], AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "redshift.amazonaws.com"}}]}))
    aws.client("redshift").create_cluster(
        ClusterIdentifier=name, NodeType="dc2.large", MasterUsername="awsuser",
        MasterUserPassword="Passw0rd!", ClusterType="single-node", DBName="dev", IamRoles=[ROLE])


def _delete_cluster(name: str) -> None:
    with contextlib.suppress(ClientError):  # gone already (a reset, or the test deleted it)
        aws.client("redshift").delete_cluster(ClusterIdentifier=name, SkipFinalClusterSnapshot=True)
    with contextlib.suppress(ClientError):  # nothing named like the course's left behind
        aws.client("iam").delete_role(RoleName=ROLE.split("/")[-1])


@pytest.fixture()
def cluster():
    """A cluster of its own for each test, deleted afterwards (with its warehouse)."""
    name = f"ecom-test-wh-{uuid.uuid4().hex[:8]}"
    _create_cluster(name)
    yield name
    _delete_cluster(name)


@pytest.fixture()
def bucket():
    name = f"ecom-test-wh-{uuid.uuid4().hex[:8]}"
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=name)
    yield name
    with contextlib.suppress(ClientError):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=name, Key=item["Key"])
        s3.delete_bucket(Bucket=name)


@pytest.fixture()
def table(cluster):
    sql(cluster, TABLE_DDL)
    return cluster


def put(bucket: str, key: str, body: bytes | str) -> str:
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)
    return f"s3://{bucket}/{key}"


def json_lines(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def course_records(n: int, start: int = 0) -> list[dict]:
    """Records shaped as the course sends them (UnitPrice a JSON number, InvoiceDate ISO)."""
    return [{"InvoiceNo": f"5{start + i:05d}", "StockCode": "52001A", "Description": "PAPER LANTERN RED",
             "Quantity": 6 + i, "InvoiceDate": "2011-03-01T10:00:00", "UnitPrice": 2.55,
             "CustomerID": None if i % 2 else "19001", "Country": "United Kingdom", "RowId": str(start + i)}
            for i in range(n)]


def jsonpaths_file(bucket: str) -> str:
    return put(bucket, "config/jsonpaths.json", json.dumps({"jsonpaths": JSONPATHS}))


# ---- tables, INSERT, SELECT ----------------------------------------------------------


def test_select_returns_typed_records_and_redshift_column_metadata(table):
    cluster = table
    inserted = sql(cluster, """INSERT INTO firehose_transactions VALUES
        ('700001', '52001A', 'PAPER LANTERN RED', 6, '2010-12-01 08:26:00', 2.55, NULL, 'United Kingdom', '0'),
        ('C536379', 'D', 'Discount', -1, '2010-12-01 09:41:00', 27.5, '14527', 'United Kingdom', '1')""")
    assert inserted["described"]["ResultRows"] == 2 and not inserted["described"]["HasResultSet"]

    out = sql(cluster, "SELECT * FROM firehose_transactions ORDER BY row_id")
    assert out["records"][0] == [
        {"stringValue": "700001"}, {"stringValue": "52001A"}, {"stringValue": "PAPER LANTERN RED"},
        {"longValue": 6}, {"stringValue": "2010-12-01 08:26:00"}, {"stringValue": "2.550"}, {"isNull": True},
        {"stringValue": "United Kingdom"}, {"stringValue": "0"}]
    assert rows(out)[1][3:6] == [-1, "2010-12-01 09:41:00", "27.500"]
    described = out["described"]
    assert described["HasResultSet"] and described["ResultRows"] == 2 and described["ResultSize"] > 0
    assert described["QueryString"] == "SELECT * FROM firehose_transactions ORDER BY row_id"
    assert described["Duration"] > 0 and described["ClusterIdentifier"] == cluster

    meta = {c["name"]: c for c in out["columns"]}
    assert [c["name"] for c in out["columns"]] == ["invoice_no", "stock_code", "description", "quantity",
                                                   "invoice_date", "unit_price", "customer_id", "country", "row_id"]
    assert {n: c["typeName"] for n, c in meta.items()} == {
        "invoice_no": "varchar", "stock_code": "varchar", "description": "varchar", "quantity": "int4",
        "invoice_date": "timestamp", "unit_price": "numeric", "customer_id": "varchar", "country": "varchar",
        "row_id": "varchar"}
    assert (meta["unit_price"]["precision"], meta["unit_price"]["scale"]) == (10, 3)
    assert meta["invoice_no"]["precision"] == 20 and meta["description"]["precision"] == 256
    assert meta["quantity"]["isSigned"] and meta["invoice_no"]["isCaseSensitive"]
    assert meta["invoice_no"]["tableName"] == "firehose_transactions" and meta["invoice_no"]["schemaName"] == "public"
    assert meta["invoice_no"]["label"] == "invoice_no" and meta["invoice_no"]["nullable"] == 1

    aggregate = sql(cluster, "SELECT COUNT(*), SUM(quantity * unit_price), MAX(invoice_date) "
                             "FROM firehose_transactions")
    assert [c["name"] for c in aggregate["columns"]] == ["count", "sum", "max"]
    assert [c["typeName"] for c in aggregate["columns"]] == ["int8", "numeric", "timestamp"]
    assert rows(aggregate) == [[2, "-12.200", "2010-12-01 09:41:00"]]

    too_long = run(cluster, "INSERT INTO firehose_transactions (invoice_no) VALUES ('123456789012345678901')")
    assert too_long["status"] == "FAILED"
    assert "value too long for type character varying(20)" in too_long["error"]
    assert scalar(cluster, "SELECT COUNT(*) FROM firehose_transactions") == 2


def test_redshift_sql_is_translated(cluster):
    sql(cluster, """CREATE TABLE sales (
            invoice_no VARCHAR(20) ENCODE zstd, quantity INTEGER ENCODE az64, invoice_date TIMESTAMP SORTKEY,
            unit_price DECIMAL(10,3), customer_id VARCHAR(20) DISTKEY, row_id VARCHAR(64) PRIMARY KEY)
        DISTSTYLE KEY COMPOUND SORTKEY (invoice_date, invoice_no)""")
    values = ", ".join(f"('{500 + i}', {i + 1}, '2011-0{1 + i % 3}-0{1 + i % 5} {10 + i % 4}:30:00', 1.25, "
                       f"{'NULL' if i % 2 else repr(str(19001 + i))}, '{i}')" for i in range(8))
    sql(cluster, f"INSERT INTO sales VALUES {values}")
    # Keys are informational on Redshift: a duplicate primary key loads.
    sql(cluster, "INSERT INTO sales VALUES ('599', 1, '2011-01-01 10:00:00', 1, NULL, '0')")

    out = sql(cluster, """SELECT DATE_TRUNC('month', invoice_date) AS month, EXTRACT(hour FROM invoice_date) AS hr,
            TO_CHAR(invoice_date, 'YYYY-MM') AS ym, DATEPART(dow, invoice_date) AS dow,
            NVL(customer_id, 'guest') AS customer, quantity / 2 AS half, LEN(invoice_no) AS n
        FROM sales WHERE row_id = '1' AND invoice_no = '501'""")
    assert rows(out) == [["2011-02-01 00:00:00", 11, "2011-02", 3, "guest", 1, 3]]
    assert [c["typeName"] for c in out["columns"]][:4] == ["timestamp", "int8", "varchar", "int8"]

    top = sql(cluster, "SELECT TOP 5 invoice_no FROM sales ORDER BY invoice_no DESC")
    assert rows(top) == [["599"], ["507"], ["506"], ["505"], ["504"]]

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    getdate = scalar(cluster, "SELECT GETDATE()")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", getdate)  # UTC, whole seconds
    assert abs((datetime.strptime(getdate, "%Y-%m-%d %H:%M:%S") - now).total_seconds()) < 60

    grouped = sql(cluster, """SELECT TO_CHAR(invoice_date, 'YYYY-MM') AS month, COUNT(*), SUM(quantity),
            LISTAGG(invoice_no, ',') WITHIN GROUP (ORDER BY invoice_no) AS invoices
        FROM sales GROUP BY 1 ORDER BY 1""")
    assert [c["name"] for c in grouped["columns"]] == ["month", "count", "sum", "invoices"]
    assert rows(grouped)[0] == ["2011-01", 4, 13, "500,503,506,599"]
    assert scalar(cluster, "SELECT 7 / 2") == 3  # integer division, as on Redshift
    assert scalar(cluster, "SELECT COALESCE(NULL, 'x')") == "x"
    assert rows(sql(cluster, "SELECT customer_id FROM sales ORDER BY customer_id DESC LIMIT 1")) == [[None]]

    # Statements separated by ';' run in order; the result is the last one's.
    assert scalar(cluster, "CREATE TEMP TABLE t AS SELECT 1 AS x; INSERT INTO t VALUES (2); "
                           "SELECT SUM(x) FROM t;") == 3
    assert run(cluster, "SELECT * FROM t")["status"] == "FAILED"  # a temp table ends with its call
    missing = run(cluster, "SELECT * FROM no_such_table")
    assert missing["status"] == "FAILED" and 'relation "no_such_table" does not exist' in missing["error"]
    assert missing["described"]["ResultRows"] == -1


def test_parameters_are_bound_not_spliced(table):
    cluster = table
    sql(cluster, "INSERT INTO firehose_transactions (invoice_no, quantity, country, row_id) "
                 "VALUES ('1', 5, 'France', 'a'), ('2', 12, 'France', 'b'), ('3', 20, 'Spain', 'c')")
    out = sql(cluster, "SELECT invoice_no FROM firehose_transactions WHERE quantity > :min AND country = :country "
                       "ORDER BY 1", {"min": 6, "country": "France"})
    assert rows(out) == [["2"]]
    assert out["described"]["QueryParameters"] == [{"name": "min", "value": "6"},
                                                   {"name": "country", "value": "France"}]
    injected = sql(cluster, "SELECT COUNT(*) FROM firehose_transactions WHERE country = :c",
                   {"c": "x' OR '1'='1"})
    assert rows(injected) == [[0]]
    unbound = run(cluster, "SELECT * FROM firehose_transactions WHERE country = :nope")
    assert unbound["status"] == "FAILED" and ":nope" in unbound["error"]


def test_batch_execute_statement_is_one_transaction(cluster):
    rd = aws.client("redshift-data")
    batch = rd.batch_execute_statement(
        ClusterIdentifier=cluster, Database="dev", DbUser="awsuser", StatementName="ecom-batch",
        Sqls=["CREATE TABLE b (id INT, name VARCHAR(10))", "INSERT INTO b VALUES (1, 'one'), (2, 'two')",
              "SELECT id, name FROM b ORDER BY id"])
    described = wait(batch["Id"])["described"]
    assert described["Status"] == "FINISHED" and described["HasResultSet"]
    subs = described["SubStatements"]
    assert [s["Id"] for s in subs] == [f"{batch['Id']}:{n}" for n in (1, 2, 3)]
    assert [s["Status"] for s in subs] == ["FINISHED"] * 3
    assert [s["ResultRows"] for s in subs][1:] == [2, 2] and [s["HasResultSet"] for s in subs] == [False, False, True]
    assert subs[2]["QueryString"] == "SELECT id, name FROM b ORDER BY id"
    page = rd.get_statement_result(Id=f"{batch['Id']}:3")
    assert [[value(f) for f in r] for r in page["Records"]] == [[1, "one"], [2, "two"]]
    only = rd.describe_statement(Id=f"{batch['Id']}:2")
    assert [s["Id"] for s in only["SubStatements"]] == [f"{batch['Id']}:2"]
    with pytest.raises(ClientError):
        rd.get_statement_result(Id=batch["Id"])  # a batch's results are per sub-statement

    failing = rd.batch_execute_statement(ClusterIdentifier=cluster, Database="dev", DbUser="awsuser",
                                         Sqls=["INSERT INTO b VALUES (3, 'three')", "SELECT * FROM nope",
                                               "INSERT INTO b VALUES (4, 'four')"])
    described = wait(failing["Id"])["described"]
    assert described["Status"] == "FAILED" and "nope" in described["Error"]
    assert [s["Status"] for s in described["SubStatements"]] == ["FINISHED", "FAILED", "ABORTED"]
    assert scalar(cluster, "SELECT COUNT(*) FROM b") == 2  # the whole batch was rolled back


def test_list_statements_and_cancel(cluster):
    rd = aws.client("redshift-data")
    ids = []
    for n in range(3):
        ids.append(rd.execute_statement(ClusterIdentifier=cluster, Database="dev", DbUser="awsuser",
                                        Sql=f"SELECT {n}", StatementName=f"ecom-list-{cluster}")["Id"])
    listed = rd.list_statements(StatementName=f"ecom-list-{cluster}")["Statements"]
    assert [s["Id"] for s in listed] == ids[::-1]  # newest first
    assert [s["QueryString"] for s in listed] == ["SELECT 2", "SELECT 1", "SELECT 0"]
    assert all(s["Status"] == "FINISHED" and not s["IsBatchStatement"] for s in listed)
    first_page = rd.list_statements(StatementName=f"ecom-list-{cluster}", MaxResults=2)
    assert len(first_page["Statements"]) == 2 and first_page["NextToken"]
    rest = rd.list_statements(StatementName=f"ecom-list-{cluster}", MaxResults=2,
                              NextToken=first_page["NextToken"])
    assert [s["Id"] for s in rest["Statements"]] == [ids[0]]
    assert rd.list_statements(Status="FAILED", ClusterIdentifier=cluster)["Statements"] == []
    with pytest.raises(ClientError, match="already in FINISHED state"):
        rd.cancel_statement(Id=ids[0])
    with pytest.raises(ClientError, match="ResourceNotFound"):
        rd.describe_statement(Id=str(uuid.uuid4()))


def test_results_are_paged_by_10000_rows(cluster):
    sql(cluster, "CREATE TABLE numbers AS SELECT g AS n, 'row ' || g AS label FROM generate_series(1, 25000) AS s(g)")
    out = sql(cluster, "SELECT n, label FROM numbers ORDER BY n")
    assert out["pages"] == 3 and len(out["records"]) == 25_000
    assert rows(out)[0] == [1, "row 1"] and rows(out)[-1] == [25_000, "row 25000"]
    first = aws.client("redshift-data").get_statement_result(Id=out["described"]["Id"])
    assert len(first["Records"]) == 10_000 and first["TotalNumRows"] == 25_000 and first["NextToken"]


def test_the_course_reads_every_page_of_a_result(cluster, monkeypatch):
    """ecomlib.redshift's readers: a frame of every page, or the first column page by page."""
    from ecomlib import redshift as wh

    monkeypatch.setattr(wh, "cluster_id", lambda: cluster)
    assert list(wh.first_column("CREATE TABLE numbers AS SELECT g AS n, 'row ' || g AS label "
                                "FROM generate_series(1, 25000) AS s(g)")) == []  # no result set
    assert list(wh.first_column("SELECT n, label FROM numbers ORDER BY n")) == list(range(1, 25_001))
    frame = wh.sql("SELECT n, label FROM numbers ORDER BY n")
    assert len(frame) == 25_000 and frame["label"].iloc[-1] == "row 25000"


# ---- COPY ----------------------------------------------------------------------------


def test_copy_json_with_jsonpaths_loads_exact_values(table, bucket):
    cluster = table
    records = course_records(5)
    put(bucket, "raw/2011/03/01/part-0.json", json_lines(records[:2]))
    put(bucket, "raw/2011/03/01/part-1.json", json_lines(records[2:4]))
    put(bucket, "raw/2011/03/02/part-2.json", "".join(json.dumps(r) for r in records[4:]))  # no newline
    put(bucket, "rawish/other.json", json_lines(course_records(3, start=100)))  # another prefix
    put(bucket, "other/ignored.json", json_lines(course_records(3, start=200)))
    paths = jsonpaths_file(bucket)

    out = sql(cluster, f"COPY firehose_transactions FROM 's3://{bucket}/raw' IAM_ROLE '{ROLE}' "
                       f"FORMAT AS JSON '{paths}' TIMEFORMAT 'auto' REGION 'us-east-1' COMPUPDATE OFF STATUPDATE OFF")
    assert out["described"]["ResultRows"] == 8  # raw/ (5) and rawish/ (3): every key starting with "raw"
    assert not out["described"]["HasResultSet"]

    loaded = sql(cluster, "SELECT * FROM firehose_transactions WHERE row_id IN ('0', '1') ORDER BY row_id")
    assert rows(loaded) == [
        ["500000", "52001A", "PAPER LANTERN RED", 6, "2011-03-01 10:00:00", "2.550", "19001", "United Kingdom", "0"],
        ["500001", "52001A", "PAPER LANTERN RED", 7, "2011-03-01 10:00:00", "2.550", None, "United Kingdom", "1"]]
    total = scalar(cluster, "SELECT SUM(quantity * unit_price) FROM firehose_transactions "
                            "WHERE row_id IN ('0', '1', '2', '3', '4')")
    assert Decimal(total) == Decimal("2.55") * sum(6 + i for i in range(5))


def test_copy_gzip_manifest_csv_and_json_auto(table, bucket):
    cluster = table
    records = course_records(6)
    for n in range(3):
        put(bucket, f"gz/part-{n}.json.gz", gzip.compress(json_lines(records[2 * n:2 * n + 2]).encode()))
    paths = jsonpaths_file(bucket)
    out = sql(cluster, f"copy firehose_transactions from 's3://{bucket}/gz/' iam_role '{ROLE}' "
                       f"json '{paths}' gzip timeformat 'auto'")
    assert out["described"]["ResultRows"] == 6

    manifest = put(bucket, "manifests/m1", json.dumps({"entries": [
        {"url": f"s3://{bucket}/gz/part-0.json.gz", "mandatory": True},
        {"url": f"s3://{bucket}/gz/part-2.json.gz", "mandatory": True},
        {"url": f"s3://{bucket}/gz/not-there.json.gz", "mandatory": False}]}))
    out = sql(cluster, f"COPY firehose_transactions FROM '{manifest}' CREDENTIALS 'aws_iam_role={ROLE}' "
                       f"MANIFEST GZIP FORMAT AS JSON '{paths}' TIMEFORMAT 'auto'")
    assert out["described"]["ResultRows"] == 4
    assert scalar(cluster, "SELECT COUNT(*) FROM firehose_transactions WHERE row_id IN ('0', '1', '4', '5')") == 8

    csv_text = ("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country,RowId\n"
                '700001,52001A,"PAPER LANTERN, RED",6,2010-12-01 08:26:00,2.55,19001,United Kingdom,c0\n'
                "700002,52002,TIN MUG BLUE,6,2010-12-01 08:28:00,1.85,,United Kingdom,c1\n")
    put(bucket, "csv/part-0.csv", csv_text)
    put(bucket, "csv/part-1.csv", csv_text.replace(",c0", ",c2").replace(",c1", ",c3"))
    out = sql(cluster, f"COPY firehose_transactions FROM 's3://{bucket}/csv/' IAM_ROLE '{ROLE}' "
                       "CSV IGNOREHEADER 1 DELIMITER ',' EMPTYASNULL")
    assert out["described"]["ResultRows"] == 4  # the header of each file is skipped
    csv_rows = rows(sql(cluster, "SELECT description, unit_price, customer_id, invoice_date "
                                 "FROM firehose_transactions WHERE row_id IN ('c0', 'c1') ORDER BY row_id"))
    assert csv_rows == [["PAPER LANTERN, RED", "2.550", "19001", "2010-12-01 08:26:00"],
                        ["TIN MUG BLUE", "1.850", None, "2010-12-01 08:28:00"]]

    # JSON 'auto' matches keys to the (lower case) column names; 'auto ignorecase' ignores case.
    put(bucket, "auto/a.json", json_lines([{"invoice_no": "A1", "quantity": 3, "unit_price": "1.5", "row_id": "a1",
                                            "not_a_column": True}]))
    put(bucket, "auto-ci/a.json", json_lines([{"Invoice_No": "A2", "QUANTITY": 4, "Row_Id": "a2"}]))
    sql(cluster, f"COPY firehose_transactions FROM 's3://{bucket}/auto/' IAM_ROLE '{ROLE}' FORMAT JSON 'auto'")
    sql(cluster, f"COPY firehose_transactions FROM 's3://{bucket}/auto-ci/' IAM_ROLE '{ROLE}' "
                 "FORMAT AS JSON 'auto ignorecase'")
    auto_rows = rows(sql(cluster, "SELECT invoice_no, quantity, unit_price FROM firehose_transactions "
                                  "WHERE row_id LIKE 'a%' ORDER BY row_id"))
    assert auto_rows == [["A1", 3, "1.500"], ["A2", 4, None]]


def test_copy_errors_are_reported_as_redshift_does(table, bucket):
    cluster = table
    paths = jsonpaths_file(bucket)
    put(bucket, "good/part-0.json", json_lines(course_records(3)))

    def copy_error(source: str, options: str = f"FORMAT AS JSON '{{paths}}' TIMEFORMAT 'auto'") -> str:
        out = run(cluster, f"COPY firehose_transactions FROM '{source}' IAM_ROLE '{ROLE}' "
                           + options.replace("{paths}", paths))
        assert out["status"] == "FAILED", out
        assert out["described"]["ResultRows"] == -1
        return out["error"]

    assert "The specified bucket does not exist" in copy_error("s3://ecom-test-wh-no-such-bucket/x/")
    assert "The specified S3 prefix 'missing/' does not exist" in copy_error(f"s3://{bucket}/missing/")
    assert "specified key does not exist" in copy_error(
        f"s3://{bucket}/good/", f"FORMAT AS JSON 's3://{bucket}/config/none.json'")
    put(bucket, "config/short.json", json.dumps({"jsonpaths": JSONPATHS[:-1]}))
    error = copy_error(f"s3://{bucket}/good/", f"FORMAT AS JSON 's3://{bucket}/config/short.json'")
    assert "Number of jsonpaths and the number of columns should match" in error
    assert "JSONPath size: 8, Number of columns in table or column list: 9" in error
    put(bucket, "config/broken.json", "{not json")
    assert "Invalid JSONPath format" in copy_error(f"s3://{bucket}/good/",
                                                   f"FORMAT AS JSON 's3://{bucket}/config/broken.json'")
    assert 'syntax error at or near "BOGUS"' in copy_error(f"s3://{bucket}/good/", "BOGUS")

    # One bad value: nothing loads, and the error names it (Redshift points to STL_LOAD_ERRORS).
    bad = course_records(4, start=10)
    bad[2]["Quantity"] = "six"
    put(bucket, "bad/part-0.json", json_lines(bad))
    error = copy_error(f"s3://{bucket}/bad/")
    assert "Load into table 'firehose_transactions' failed. Check 'stl_load_errors'" in error
    assert f"s3://{bucket}/bad/part-0.json" in error and "column quantity" in error and "'six'" in error
    assert scalar(cluster, "SELECT COUNT(*) FROM firehose_transactions") == 0
    # ... unless MAXERROR allows it.
    out = sql(cluster, f"COPY firehose_transactions FROM 's3://{bucket}/bad/' IAM_ROLE '{ROLE}' "
                       f"FORMAT AS JSON '{paths}' TIMEFORMAT 'auto' MAXERROR 1")
    assert out["described"]["ResultRows"] == 3

    # Without TIMEFORMAT 'auto', Redshift expects 'YYYY-MM-DD HH:MI:SS' (no ISO 'T').
    error = copy_error(f"s3://{bucket}/good/", "FORMAT AS JSON '{paths}'")
    assert "Invalid timestamp format or value [YYYY-MM-DD HH24:MI:SS]" in error and "2011-03-01T10:00:00" in error

    long_code = course_records(1, start=20)
    long_code[0]["StockCode"] = "X" * 21
    put(bucket, "long/part-0.json", json_lines(long_code))
    assert "String length exceeds DDL length (varchar(20))" in copy_error(f"s3://{bucket}/long/")
    out = sql(cluster, f"COPY firehose_transactions FROM 's3://{bucket}/long/' IAM_ROLE '{ROLE}' "
                       f"FORMAT AS JSON '{paths}' TIMEFORMAT 'auto' TRUNCATECOLUMNS")
    assert out["described"]["ResultRows"] == 1
    assert scalar(cluster, "SELECT stock_code FROM firehose_transactions WHERE row_id = '20'") == "X" * 20

    put(bucket, "broken/part-0.json", '{"InvoiceNo": "1", "Quantity": \n')
    error = copy_error(f"s3://{bucket}/broken/")
    assert "Load into table" in error and f"s3://{bucket}/broken/part-0.json" in error


def test_copy_of_many_objects_is_all_or_nothing_and_names_the_bad_object(table, bucket):
    """JSON Lines objects are loaded together from one local file: a bad value or broken
    JSON in any of them still fails the whole COPY, and the error names that object."""
    cluster = table
    paths = jsonpaths_file(bucket)
    copy = (f"COPY firehose_transactions FROM 's3://{bucket}/many/' IAM_ROLE '{ROLE}' "
            f"FORMAT AS JSON '{paths}' TIMEFORMAT 'auto'")
    put(bucket, "many/part-0.json", json_lines(course_records(3)))
    put(bucket, "many/part-1.json", "".join(json.dumps(r) for r in course_records(2, start=10)))  # {..}{..}
    put(bucket, "many/part-2.json", json.dumps(course_records(1, start=20)[0]))  # no newline at the end
    put(bucket, "many/part-3.json", json_lines(course_records(2, start=30)))
    assert sql(cluster, copy)["described"]["ResultRows"] == 8
    assert rows(sql(cluster, "SELECT row_id FROM firehose_transactions ORDER BY row_id")) == [
        [r] for r in ["0", "1", "10", "11", "2", "20", "30", "31"]]
    sql(cluster, "DELETE FROM firehose_transactions")

    bad = course_records(3, start=40)
    bad[1]["Quantity"] = "six"
    put(bucket, "many/part-2.json", json_lines(bad))
    out = run(cluster, copy)
    assert out["status"] == "FAILED"
    assert "Load into table 'firehose_transactions' failed. Check 'stl_load_errors'" in out["error"]
    assert f"s3://{bucket}/many/part-2.json" in out["error"] and "column quantity" in out["error"]
    assert "'six'" in out["error"]
    assert scalar(cluster, "SELECT COUNT(*) FROM firehose_transactions") == 0

    put(bucket, "many/part-2.json", '{"InvoiceNo": "1", "Quantity": \n')
    rd = aws.client("redshift-data")
    batch = rd.batch_execute_statement(
        ClusterIdentifier=cluster, Database="dev", DbUser="awsuser",
        Sqls=["INSERT INTO firehose_transactions (invoice_no, row_id) VALUES ('x', 'x')", copy])
    described = wait(batch["Id"])["described"]
    assert [s["Status"] for s in described["SubStatements"]] == ["FINISHED", "FAILED"]
    error = described["SubStatements"][1]["Error"]
    assert "Load into table" in error and f"s3://{bucket}/many/part-2.json" in error
    assert scalar(cluster, "SELECT COUNT(*) FROM firehose_transactions") == 0  # the INSERT went too

    put(bucket, "many/part-2.json", json_lines(course_records(1, start=50)))
    assert sql(cluster, copy)["described"]["ResultRows"] == 8


# ---- lifecycle -----------------------------------------------------------------------


def _warehouse_file(cluster: str) -> Path:
    return settings().home / "warehouse" / f"{server.status()['pid']}-{cluster}.duckdb"


def test_deleted_cluster_loses_its_data_and_unknown_clusters_fail(cluster):
    sql(cluster, "CREATE TABLE kept (x INT)")
    assert _warehouse_file(cluster).exists()
    assert cluster in server.status()["warehouses"]

    rd = aws.client("redshift-data")
    with pytest.raises(ClientError, match="Redshift endpoint doesn't exist in this region") as caught:
        rd.execute_statement(ClusterIdentifier="ecom-test-wh-unknown", Database="dev", DbUser="awsuser",
                             Sql="SELECT 1")
    assert caught.value.response["Error"]["Code"] == "ValidationException"

    wrong_db = run(cluster, "SELECT 1", database="nodb")
    assert wrong_db["status"] == "FAILED" and 'database "nodb" does not exist' in wrong_db["error"]

    _delete_cluster(cluster)
    assert not _warehouse_file(cluster).exists() and cluster not in server.status()["warehouses"]
    with pytest.raises(ClientError, match="not found"):
        rd.execute_statement(ClusterIdentifier=cluster, Database="dev", DbUser="awsuser", Sql="SELECT 1")
    _create_cluster(cluster)  # the same name again: a new, empty cluster
    assert "does not exist" in run(cluster, "SELECT * FROM kept")["error"]


def test_reset_deletes_the_warehouse_files(cluster):
    """server.reset() wipes the whole embedded AWS, so this test recreates what it needs."""
    sql(cluster, "CREATE TABLE t (x INT)")
    path = _warehouse_file(cluster)
    assert path.exists()
    server.reset()
    assert not path.exists()
    assert server.status()["warehouses"] == []
    with pytest.raises(ClientError, match="ValidationException"):
        aws.client("redshift-data").execute_statement(ClusterIdentifier=cluster, Database="dev",
                                                      DbUser="awsuser", Sql="SELECT 1")
    _create_cluster(cluster)
    assert scalar(cluster, "SELECT 41 + 1") == 42


@pytest.mark.slow
def test_aws_cli_runs_statements(cluster):
    endpoint = server.ensure_running()
    aws_cli = Path(sys.executable).with_name("aws")
    keys = server.credentials()  # the embedded AWS's own (python -m ecomlib local credentials)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"], "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
           "AWS_DEFAULT_REGION": "us-east-1"}

    def cli(*args: str) -> dict:
        out = subprocess.run([str(aws_cli), "--endpoint-url", endpoint, "redshift-data", *args],
                             capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    submitted = cli("execute-statement", "--cluster-identifier", cluster, "--database", "dev",
                    "--db-user", "awsuser", "--sql", "SELECT 'cli' AS source, 2 * 21 AS answer")
    assert re.fullmatch(r"[a-z0-9-]{36}", submitted["Id"])
    assert cli("describe-statement", "--id", submitted["Id"])["Status"] == "FINISHED"
    result = cli("get-statement-result", "--id", submitted["Id"])
    assert result["Records"] == [[{"stringValue": "cli"}, {"longValue": 42}]]
    assert [c["name"] for c in result["ColumnMetadata"]] == ["source", "answer"]


# ---- pieces, in-process --------------------------------------------------------------


def test_copy_options_parse_in_any_order_and_statements_split():
    spec = local_warehouse.parse_copy(
        "copy public.t (a, b) from 's3://x/y' gzip timeformat as 'auto' csv quote as '''' ignoreheader 1 "
        "delimiter ';' region 'us-east-1' iam_role 'arn:aws:iam::1:role/r' compupdate off maxerror 5 "
        "emptyasnull blanksasnull truncatecolumns acceptinvchars")
    assert (spec.schema, spec.table, spec.columns, spec.source) == ("public", "t", ["a", "b"], "s3://x/y")
    assert (spec.format, spec.quote, spec.delimiter) == ("CSV", "'", ";")
    assert (spec.ignore_header, spec.compression) == (1, "gzip")
    assert (spec.time_format, spec.max_error, spec.empty_as_null, spec.truncate_columns) == ("auto", 5, True, True)
    spec = local_warehouse.parse_copy("COPY t FROM 's3://b/m' MANIFEST FORMAT AS JSON 's3://b/paths.json'")
    assert spec.manifest and spec.format == "JSON" and spec.json_option == "s3://b/paths.json"
    assert local_warehouse.split_statements("select ';' ; -- a comment; \nselect 2; /* x; */ ;") == [
        "select ';'", "-- a comment; \nselect 2"]


# ---- performance smoke ---------------------------------------------------------------


@pytest.mark.slow
def test_copy_200k_generated_rows_exactly(table, bucket):
    cluster = table
    df = data.generate(200_000)
    records = data.to_records(df)
    for label, record in zip(df.index, records):
        record["RowId"] = str(label)
    per_object = 10_000
    for n in range(0, len(records), per_object):
        put(bucket, f"firehose/2011/part-{n // per_object:03d}.json", json_lines(records[n:n + per_object]))
    paths = jsonpaths_file(bucket)

    started = time.perf_counter()
    out = sql(cluster, f"COPY firehose_transactions FROM 's3://{bucket}/firehose/' IAM_ROLE '{ROLE}' "
                       f"FORMAT AS JSON '{paths}' TIMEFORMAT 'auto'")
    seconds = time.perf_counter() - started
    print(f"\nCOPY of 200,000 rows (20 objects): {seconds:.2f} s through the Data API, "
          f"{out['described']['Duration'] / 1e9:.2f} s in the warehouse")
    assert out["described"]["ResultRows"] == 200_000

    summary = rows(sql(cluster, "SELECT COUNT(*), COUNT(DISTINCT row_id), COUNT(DISTINCT invoice_no), "
                                "SUM(quantity * unit_price) FROM firehose_transactions"))[0]
    expected = data.summary(df)
    assert summary[:3] == [200_000, 200_000, expected["invoices"]]
    assert Decimal(summary[3]) == data.revenue(df)
