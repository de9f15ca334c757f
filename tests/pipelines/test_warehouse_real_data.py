"""On the full real dataset, the warehouse's answers equal an independent pandas computation.

The rows reach the warehouse as Firehose would deliver them: JSON Lines objects in S3,
loaded with the pipeline's own COPY (jsonpaths, TIMEFORMAT 'auto').
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ecomlib import aws, client, data
from ecomlib import redshift as wh
from ecomlib.pipelines import warehouse

pytestmark = pytest.mark.real_data

SALE = "invoice_no NOT LIKE 'C%' AND quantity > 0 AND unit_price > 0"


@pytest.fixture(scope="module")
def loaded(real_dataset):
    df = data.read_csv(real_dataset)
    rows = client.to_payload_rows(df)
    warehouse.teardown()
    warehouse.ensure_cluster()
    warehouse.create_table()
    aws.client("s3").create_bucket(Bucket=warehouse.bucket_name())
    warehouse.upload_jsonpaths()
    s3 = aws.client("s3")
    for part, start in enumerate(range(0, len(rows), 60_000)):
        body = "".join(json.dumps(r) + "\n" for r in rows[start:start + 60_000]).encode()
        s3.put_object(Bucket=warehouse.bucket_name(), Key=f"firehose/real/part-{part:02d}", Body=body)
    wh.execute(f"COPY {warehouse.TABLE} ({','.join(warehouse.COLUMNS)}) "
               f"FROM 's3://{warehouse.bucket_name()}/firehose/real/' {warehouse.copy_options()}")
    yield df
    warehouse.teardown()


def money(milli) -> Decimal:
    return Decimal(int(milli)) / 1000


def test_every_row_and_the_total_revenue(loaded):
    totals = wh.sql(f"SELECT COUNT(*) AS n, COUNT(DISTINCT row_id) AS ids, "
                    f"SUM(quantity * unit_price) AS revenue FROM {warehouse.TABLE}")
    assert totals["n"][0] == totals["ids"][0] == 541_909
    assert totals["revenue"][0] == data.revenue(loaded) == Decimal("9747747.934")


def test_revenue_per_month(loaded):
    got = wh.sql(f"SELECT TO_CHAR(invoice_date, 'YYYY-MM') AS month, SUM(quantity * unit_price) AS revenue "
                 f"FROM {warehouse.TABLE} GROUP BY 1 ORDER BY 1")
    milli = data.line_total_milli(loaded).groupby(loaded["InvoiceDate"].dt.strftime("%Y-%m")).sum()
    assert dict(zip(got["month"], got["revenue"])) == {m: money(v) for m, v in milli.items()}


def test_revenue_per_country(loaded):
    got = wh.sql(f"SELECT country, SUM(quantity * unit_price) AS revenue FROM {warehouse.TABLE} GROUP BY 1")
    milli = data.line_total_milli(loaded).groupby(loaded["Country"]).sum()
    assert dict(zip(got["country"], got["revenue"])) == {c: money(v) for c, v in milli.items()}


def test_top_products_by_quantity_and_revenue_among_sales(loaded):
    sales = loaded[~loaded["InvoiceNo"].str.startswith("C") & (loaded["Quantity"] > 0) & (loaded["UnitPrice"] > 0)]
    by_quantity = wh.sql(f"SELECT stock_code, SUM(quantity) AS units FROM {warehouse.TABLE} WHERE {SALE} "
                         "GROUP BY 1 ORDER BY units DESC, stock_code LIMIT 10")
    expected = sales.groupby("StockCode")["Quantity"].sum().reset_index()
    expected = expected.sort_values(["Quantity", "StockCode"], ascending=[False, True]).head(10)
    assert list(zip(by_quantity["stock_code"], by_quantity["units"])) == list(zip(expected["StockCode"], expected["Quantity"]))

    by_revenue = wh.sql(f"SELECT stock_code, SUM(quantity * unit_price) AS revenue FROM {warehouse.TABLE} "
                        f"WHERE {SALE} GROUP BY 1 ORDER BY revenue DESC, stock_code LIMIT 10")
    milli = data.line_total_milli(sales).groupby(sales["StockCode"]).sum().reset_index(name="milli")
    milli = milli.sort_values(["milli", "StockCode"], ascending=[False, True]).head(10)
    assert list(zip(by_revenue["stock_code"], by_revenue["revenue"])) == [
        (code, money(v)) for code, v in zip(milli["StockCode"], milli["milli"])]
