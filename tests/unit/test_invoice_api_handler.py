"""Unit tests of the Lambda ``lambda_src/invoice_api/handler.py`` without AWS.

DynamoDB is replaced by a small fake client serving ``query`` from lists of low-level
(typed) items, a page of ``page_size`` items at a time.  The sample events in
``lambda_src/invoice_api/events/`` must give exactly their ``*_response.json`` files.
One last test runs the handler against moto's in-process DynamoDB (no server).
All data is invented (invoices 7000xx, stock codes 52xxx, customers 19xxx).
"""

from __future__ import annotations

import copy
import json
import logging
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from ecomlib.deploy import load_handler

REPO = Path(__file__).resolve().parents[2]
LAMBDA_DIR = REPO / "lambda_src" / "invoice_api"
EVENTS = LAMBDA_DIR / "events"
INVOICES, CUSTOMERS = "ecom-test-invoices-table", "ecom-test-customers-table"
KEYS = {INVOICES: ("InvoiceNo", "Part"), CUSTOMERS: ("CustomerID", "InvoicePart")}
CORS = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}




H = load_handler("invoice_api")  # as in its deployment package: `shared` importable
AWS = sys.modules["shared.aws"]  # the shared client cache the handler uses


def load(name: str):
    return json.loads((EVENTS / name).read_text())


# ---------------------------------------------------------------------------
# Fakes and helpers
# ---------------------------------------------------------------------------


class FakeDynamoDB:
    """Query over {table: [typed items]}, sorted by sort key, ``page_size`` items per page."""

    def __init__(self, tables: dict[str, list[dict]] | None = None, page_size: int = 100):
        self.tables = {INVOICES: [], CUSTOMERS: [], **(tables or {})}
        self.page_size = page_size
        self.calls: list[dict] = []

    def query(self, *, TableName, KeyConditionExpression, ExpressionAttributeNames,  # noqa: N803
              ExpressionAttributeValues, ExclusiveStartKey=None):
        self.calls.append({"TableName": TableName, "ExclusiveStartKey": ExclusiveStartKey})
        hash_key, sort_key = KEYS[TableName]
        assert KeyConditionExpression == "#k = :v"
        assert ExpressionAttributeNames == {"#k": hash_key}
        (value,) = ExpressionAttributeValues.values()
        assert set(value) == {"S"}
        items = sorted((i for i in self.tables[TableName] if i[hash_key] == value),
                       key=lambda i: i[sort_key]["S"])
        if ExclusiveStartKey:
            assert set(ExclusiveStartKey) == {hash_key, sort_key}
            items = [i for i in items if i[sort_key]["S"] > ExclusiveStartKey[sort_key]["S"]]
        page = copy.deepcopy(items[: self.page_size])
        answer = {"Items": page, "Count": len(page), "ScannedCount": len(page)}
        if len(items) > self.page_size:
            last = page[-1]
            answer["LastEvaluatedKey"] = {hash_key: last[hash_key], sort_key: last[sort_key]}
        return answer


class RaisingDynamoDB:
    def __init__(self, exc: Exception):
        self.exc = exc

    def query(self, **kwargs):
        raise self.exc


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("INVOICES_TABLE", INVOICES)
    monkeypatch.setenv("CUSTOMERS_TABLE", CUSTOMERS)
    AWS.client.cache_clear()


def _use(monkeypatch, fake):
    monkeypatch.setattr(H, "client", lambda service, **kwargs: fake)
    return fake


@pytest.fixture
def ddb(monkeypatch) -> FakeDynamoDB:
    fake = FakeDynamoDB({INVOICES: load("get_invoice_items.json"), CUSTOMERS: load("get_customer_items.json")})
    _use(monkeypatch, fake)
    return fake


def get_event(resource: str = "/invoices", query: dict | None = None, path_params: dict | None = None,
              method: str = "GET") -> dict:
    event = load("get_invoice.json")
    event.update(resource=resource, httpMethod=method, queryStringParameters=query, pathParameters=path_params,
                 multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None)
    return event


def call(event: dict) -> tuple[int, dict, dict]:
    """(status, body decoded with exact Decimals, headers)"""
    answer = H.lambda_handler(event, None)
    assert set(answer) == {"statusCode", "headers", "body"}
    return answer["statusCode"], json.loads(answer["body"], parse_float=Decimal), answer["headers"]


def get_invoice(number: str) -> tuple[int, dict, dict]:
    return call(get_event("/invoices", {"InvoiceNo": number}))


def get_customer(customer: str) -> tuple[int, dict, dict]:
    return call(get_event("/customers/{CustomerID}", None, {"CustomerID": customer}))


def S(value: str) -> dict:
    return {"S": value}


def N(value: str) -> dict:
    return {"N": value}


def invoice_part(number: str, part: str, lines: dict[str, tuple], **extra) -> dict:
    """A typed Invoices item; lines: RowId -> (StockCode, Quantity, UnitPrice, LineTotal)."""
    item = {"InvoiceNo": S(number), "Part": S(part), "InvoiceDate": S("2011-05-02T12:00:00"),
            "CustomerID": S("19005"), "Country": S("France"), "IsCancellation": {"BOOL": False},
            "Lines": S(json.dumps({row_id: {"StockCode": code, "Description": f"ITEM {code}",
                                            "Quantity": int(qty), "UnitPrice": price, "LineTotal": total}
                                   for row_id, (code, qty, price, total) in lines.items()})),
            "LineCount": N(str(len(lines))), "Amount": N("0")}
    item.update(extra)
    return item


def customer_part(customer: str, number: str, part: str, date: str, totals: dict[str, str],
                  cancel: bool = False, country: str = "Spain") -> dict:
    return {"CustomerID": S(customer), "InvoicePart": S(f"{number}#{part}"), "InvoiceNo": S(number),
            "InvoiceDate": S(date), "Country": S(country), "IsCancellation": {"BOOL": cancel},
            "LineTotals": S(json.dumps(totals)), "Amount": N("0")}


# ---------------------------------------------------------------------------
# Sample events
# ---------------------------------------------------------------------------

SAMPLES = ["get_invoice", "get_customer", "get_missing_param"]


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_event_gives_its_expected_response(name, ddb):
    expected = load(f"{name}_response.json")
    answer = H.lambda_handler(load(f"{name}.json"), None)
    assert answer["statusCode"] == expected["statusCode"]
    assert answer["headers"] == expected["headers"]
    parse = {"parse_float": Decimal}
    assert json.loads(answer["body"], **parse) == json.loads(expected["body"], **parse)


def test_sample_events_have_the_rest_proxy_shape():
    keys = {"resource", "path", "httpMethod", "headers", "multiValueHeaders", "queryStringParameters",
            "multiValueQueryStringParameters", "pathParameters", "stageVariables", "requestContext",
            "body", "isBase64Encoded"}
    for name in SAMPLES:
        sample = load(f"{name}.json")
        assert keys <= set(sample), name
        assert sample["httpMethod"] == "GET" and sample["requestContext"]["stage"] == "dev"
        assert sample["requestContext"]["resourcePath"] == sample["resource"]
        assert sample["requestContext"]["requestId"]
    assert load("get_invoice.json")["queryStringParameters"] == {"InvoiceNo": "700001"}
    assert load("get_customer.json")["pathParameters"] == {"CustomerID": "19001"}


def test_sample_invoice_items_exercise_the_merge():
    parts = load("get_invoice_items.json")
    assert len(parts) == 2
    row_ids = [set(json.loads(p["Lines"]["S"])) for p in parts]
    assert row_ids[0] & row_ids[1]  # one line stored in both parts
    codes = [line["StockCode"] for p in parts for line in json.loads(p["Lines"]["S"]).values()]
    assert len(set(codes)) < len(codes)  # a repeated StockCode


def test_sample_invoice_queries_the_invoices_table(ddb):
    H.lambda_handler(load("get_invoice.json"), None)
    H.lambda_handler(load("get_customer.json"), None)
    assert [c["TableName"] for c in ddb.calls] == [INVOICES, CUSTOMERS]


def test_sample_response_bodies_are_exact_text(ddb):
    """Money as written by a person: 2.55, 15.3, 53.43 (no 15.299999...)."""
    body = H.lambda_handler(load("get_invoice.json"), None)["body"]
    assert '"UnitPrice": 2.55' in body and '"LineTotal": 15.3}' in body and '"Total": 53.43}' in body
    body = H.lambda_handler(load("get_customer.json"), None)["body"]
    assert '"Amount": -5.1,' in body and '"Total": 71.88,' in body


# ---------------------------------------------------------------------------
# 400 / 404 / 405
# ---------------------------------------------------------------------------

BAD_IDS = ["", "'; DROP", "7000 01", "700001'", "7" * 21, "../700001", "700001#00001",
           "７００００１", "٧٠٠"]  # the last two: digits, but not ASCII


@pytest.mark.parametrize("number", BAD_IDS)
def test_malformed_invoice_no_is_400_without_a_query(number, ddb):
    status, body, headers = get_invoice(number)
    assert status == 400 and headers == CORS
    assert body == {"message": "InvoiceNo must be 1 to 20 letters or digits, e.g. 536365 or C536379"}
    assert ddb.calls == []


@pytest.mark.parametrize("customer", BAD_IDS + ["19001.0"])
def test_malformed_customer_id_is_400_without_a_query(customer, ddb):
    status, body, _ = get_customer(customer)
    assert status == 400 and body["message"].startswith("CustomerID must be 1 to 20 letters or digits")
    assert ddb.calls == []


@pytest.mark.parametrize("number", ["700001", "C700003", "A700004", "7" * 20, "x"])
def test_well_formed_ids_are_looked_up(number, ddb):
    status, _, _ = get_invoice(number)
    assert status in (200, 404) and len(ddb.calls) == 1


def test_missing_parameters_are_400(ddb):
    assert get_event()["queryStringParameters"] is None
    assert call(get_event())[0] == 400
    assert call(get_event(query={"invoiceno": "700001"}))[0] == 400  # names are case-sensitive
    status, body, _ = call(get_event("/customers/{CustomerID}"))
    assert status == 400 and "CustomerID" in body["message"]


def test_invoice_no_given_twice_with_different_values_is_400(ddb):
    event = get_event(query={"InvoiceNo": "700002"})
    event["multiValueQueryStringParameters"] = {"InvoiceNo": ["700001", "700002"]}
    assert call(event)[:2] == (400, {"message": "give the query parameter InvoiceNo only once"})
    event["multiValueQueryStringParameters"] = {"InvoiceNo": ["700001", "700001"]}
    event["queryStringParameters"] = {"InvoiceNo": "700001"}
    assert call(event)[0] == 200


def test_unknown_invoice_and_customer_are_404(ddb):
    assert get_invoice("123456")[:2] == (404, {"message": "invoice 123456 not found"})
    assert get_customer("19999")[:2] == (404, {"message": "customer 19999 not found"})


@pytest.mark.parametrize("resource", ["/products", "/invoices/{InvoiceNo}", "/", None])
def test_other_resources_are_404_no_route(resource, ddb):
    status, body, headers = call(get_event(resource, {"InvoiceNo": "700001"}))
    assert (status, body, headers) == (404, {"message": "no route"}, CORS)
    assert ddb.calls == []


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
@pytest.mark.parametrize("resource", ["/invoices", "/customers/{CustomerID}"])
def test_other_methods_are_405_with_allow_get(method, resource, ddb):
    status, body, headers = call(get_event(resource, {"InvoiceNo": "700001"}, {"CustomerID": "19001"}, method))
    assert status == 405 and headers == {**CORS, "Allow": "GET"}
    assert body == {"message": f"method {method} not allowed: use GET"}
    assert ddb.calls == []


def test_an_event_that_is_not_a_dict_is_400(ddb):
    assert H.lambda_handler(None, None)["statusCode"] == 400
    assert H.lambda_handler([1, 2], None)["statusCode"] == 400


# ---------------------------------------------------------------------------
# Merging an invoice
# ---------------------------------------------------------------------------


def test_a_line_stored_in_two_parts_counts_once(monkeypatch):
    parts = [
        invoice_part("700010", "00001", {"1": ("52001", "2", "1.25", "2.5"), "2": ("52002", "1", "4", "4")}),
        invoice_part("700010", "00002", {"2": ("52002", "1", "4", "4"), "3": ("52001", "3", "1.25", "3.75")}),
        invoice_part("700010", "00003", {"1": ("52001", "2", "1.25", "2.5")}),
        invoice_part("700011", "00001", {"1": ("52009", "1", "99", "99")}),  # another invoice
    ]
    _use(monkeypatch, FakeDynamoDB({INVOICES: parts}))
    status, body, _ = get_invoice("700010")
    assert status == 200
    assert [line["RowId"] for line in body["Lines"]] == ["1", "2", "3"]
    assert [line["StockCode"] for line in body["Lines"]] == ["52001", "52002", "52001"]  # repeated code kept
    assert body["LineCount"] == 3 and body["Total"] == Decimal("10.25")


def test_exact_money_three_lines_of_0_1_give_0_3(monkeypatch):
    lines = {str(i): ("52001", "1", "0.1", "0.1") for i in range(1, 4)}
    _use(monkeypatch, FakeDynamoDB({INVOICES: [invoice_part("700020", "00001", lines)]}))
    answer = H.lambda_handler(get_event(query={"InvoiceNo": "700020"}), None)
    assert answer["body"].endswith('"LineCount": 3, "Total": 0.3}')
    assert json.loads(answer["body"], parse_float=Decimal)["Total"] == Decimal("0.3")


def test_many_small_prices_add_up_exactly(monkeypatch):
    lines = {str(i): ("52001", "6", "2.55", "15.3") for i in range(1, 1001)}
    _use(monkeypatch, FakeDynamoDB({INVOICES: [invoice_part("700021", "00001", lines)]}))
    answer = H.lambda_handler(get_event(query={"InvoiceNo": "700021"}), None)
    assert answer["body"].endswith('"LineCount": 1000, "Total": 15300}')


@pytest.mark.parametrize(
    "value, text",
    [("15.30", "15.3"), ("15.3", "15.3"), ("2.55", "2.55"), ("600", "600"), ("1E+2", "100"), ("-5.10", "-5.1"),
     ("0.000", "0"), ("0.0001", "0.0001"), ("12345678901234567890.123456789", "12345678901234567890.123456789"),
     ("-0.5", "-0.5"), ("10", "10")],
)
def test_decimals_are_written_as_exact_json_numbers(value, text):
    assert H.to_json(Decimal(value)) == text
    assert json.loads(text, parse_float=Decimal) == Decimal(value)


def test_to_json_handles_nesting_and_text():
    value = {"a": [Decimal("1.10"), None, True, "é \"q\""], "b": {}, "c": 3}
    text = H.to_json(value)
    assert json.loads(text) == {"a": [1.1, None, True, "é \"q\""], "b": {}, "c": 3}
    assert "é" in text


def test_lines_are_sorted_numerically_when_row_ids_are_all_digits(monkeypatch):
    lines = {r: ("52001", "1", "1", "1") for r in ["100", "9", "10", "0011"]}
    _use(monkeypatch, FakeDynamoDB({INVOICES: [invoice_part("700030", "00001", lines)]}))
    assert [line["RowId"] for line in get_invoice("700030")[1]["Lines"]] == ["9", "10", "0011", "100"]


def test_lines_are_sorted_as_text_otherwise():
    assert H.row_order(["req-2:10", "req-2:9", "100", "req-1:3"]) == ["100", "req-1:3", "req-2:10", "req-2:9"]
    assert H.row_order(["²", "1"]) == ["1", "²"]  # a unicode digit is not a number to int()
    assert H.row_order([]) == []


def test_missing_customer_and_description_are_null(monkeypatch):
    part = invoice_part("C700040", "00001", {"1": ("52001", "-2", "3.5", "-7")}, IsCancellation={"BOOL": True})
    del part["CustomerID"]
    part["Lines"] = S(json.dumps({"1": {"StockCode": "52001", "Description": None, "Quantity": -2,
                                        "UnitPrice": "3.5", "LineTotal": "-7"}}))
    _use(monkeypatch, FakeDynamoDB({INVOICES: [part]}))
    status, body, _ = get_invoice("C700040")
    assert status == 200
    assert body["CustomerID"] is None and body["IsCancellation"] is True
    assert body["Lines"] == [{"RowId": "1", "StockCode": "52001", "Description": None, "Quantity": -2,
                              "UnitPrice": Decimal("3.5"), "LineTotal": -7}]
    assert body["Total"] == -7


def test_merge_invoice_is_pure():
    line = {"StockCode": "52001", "Quantity": 1, "UnitPrice": "0.5", "LineTotal": "0.5"}
    items = [{"InvoiceNo": "1", "Part": "a", "InvoiceDate": "2011-01-01T00:00:00", "Country": "X",
              "IsCancellation": False, "Lines": json.dumps({"5": line})}]
    before = copy.deepcopy(items)
    merged = H.merge_invoice(items)
    assert items == before
    assert list(merged) == ["InvoiceNo", "InvoiceDate", "CustomerID", "Country", "IsCancellation",
                            "Lines", "LineCount", "Total"]
    assert merged["Total"] == Decimal("0.5") and merged["CustomerID"] is None


# ---------------------------------------------------------------------------
# Merging a customer
# ---------------------------------------------------------------------------


def test_customer_invoices_are_merged_sorted_and_totalled(monkeypatch):
    items = [
        customer_part("19005", "700052", "00001", "2011-06-01T09:00:00", {"1": "1.1", "2": "2.2"}),
        customer_part("19005", "700052", "00002", "2011-06-01T09:00:00", {"2": "2.2", "3": "0.7"}),
        customer_part("19005", "700051", "00001", "2011-06-01T09:00:00", {"7": "10"}),  # same date
        customer_part("19005", "700050", "00001", "2011-05-15T17:30:00", {"4": "0.1", "5": "0.1", "6": "0.1"}),
        customer_part("19005", "C700053", "00001", "2011-06-09T11:00:00", {"8": "-1.1"}, cancel=True,
                      country="Portugal"),
        customer_part("19006", "700060", "00001", "2011-06-02T09:00:00", {"9": "5"}),  # another customer
    ]
    _use(monkeypatch, FakeDynamoDB({CUSTOMERS: items}))
    status, body, _ = get_customer("19005")
    assert status == 200
    assert body == {
        "CustomerID": "19005",
        "Country": "Portugal",
        "Invoices": [
            {"InvoiceNo": "700050", "InvoiceDate": "2011-05-15T17:30:00", "Amount": Decimal("0.3"),
             "IsCancellation": False},
            {"InvoiceNo": "700051", "InvoiceDate": "2011-06-01T09:00:00", "Amount": 10,
             "IsCancellation": False},
            {"InvoiceNo": "700052", "InvoiceDate": "2011-06-01T09:00:00", "Amount": Decimal("4"),
             "IsCancellation": False},
            {"InvoiceNo": "C700053", "InvoiceDate": "2011-06-09T11:00:00", "Amount": Decimal("-1.1"),
             "IsCancellation": True},
        ],
        "InvoiceCount": 4,
        "Total": Decimal("13.2"),
        "FirstPurchase": "2011-05-15T17:30:00",
        "LastPurchase": "2011-06-01T09:00:00",
    }


def test_customer_with_only_cancellations_has_no_purchase_dates():
    items = [{"CustomerID": "19007", "InvoicePart": "C700070#1", "InvoiceNo": "C700070",
              "InvoiceDate": "2011-07-01T10:00:00", "Country": "Italy", "IsCancellation": True,
              "LineTotals": '{"1": "-3"}', "Amount": Decimal("-3")}]
    merged = H.merge_customer(items)
    assert merged["FirstPurchase"] is None and merged["LastPurchase"] is None
    assert merged["Total"] == Decimal("-3") and merged["InvoiceCount"] == 1


# ---------------------------------------------------------------------------
# Pagination
# ---------------------------------------------------------------------------


def test_invoice_parts_are_read_page_after_page(monkeypatch):
    line = ("52001", "1", "0.01", "0.01")
    parts = [invoice_part("700080", f"{p:05d}", {str(p * 10 + i): line for i in range(3)}) for p in range(7)]
    fake = FakeDynamoDB({INVOICES: parts}, page_size=2)
    _use(monkeypatch, fake)
    status, body, _ = get_invoice("700080")
    assert status == 200 and body["LineCount"] == 21 and body["Total"] == Decimal("0.21")
    assert len(fake.calls) == 4
    assert fake.calls[0]["ExclusiveStartKey"] is None
    assert fake.calls[1]["ExclusiveStartKey"] == {"InvoiceNo": S("700080"), "Part": S("00001")}


def test_customer_items_are_read_page_after_page(monkeypatch):
    items = [customer_part("19008", f"7000{90 + i}", "00001", f"2011-08-{i + 1:02d}T10:00:00", {str(i): "1.5"})
             for i in range(5)]
    fake = FakeDynamoDB({CUSTOMERS: items}, page_size=1)
    _use(monkeypatch, fake)
    status, body, _ = get_customer("19008")
    assert status == 200 and body["InvoiceCount"] == 5 and body["Total"] == Decimal("7.5")
    assert len(fake.calls) == 5


# ---------------------------------------------------------------------------
# Errors, logging, the client
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "Requested resource not found"}},
                    "Query"),
        ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                    "Query"),
        RuntimeError("boom"),
        KeyError("Lines"),
    ],
)
def test_an_internal_error_is_500_without_a_stack_trace(exc, monkeypatch, caplog):
    monkeypatch.setattr(H, "client", lambda service, **kwargs: RaisingDynamoDB(exc))
    event = load("get_invoice.json")
    with caplog.at_level(logging.INFO):
        answer = H.lambda_handler(event, None)
    assert answer["statusCode"] == 500 and answer["headers"] == CORS
    assert json.loads(answer["body"]) == {"message": "internal error",
                                          "requestId": event["requestContext"]["requestId"]}
    assert "Traceback" not in answer["body"] and "boom" not in answer["body"]
    assert "Traceback" in caplog.text  # the details are in the log


def test_a_broken_item_is_500(monkeypatch):
    part = invoice_part("700100", "00001", {"1": ("52001", "1", "1", "1")})
    del part["InvoiceDate"]
    _use(monkeypatch, FakeDynamoDB({INVOICES: [part]}))
    request_id = load("get_invoice.json")["requestContext"]["requestId"]
    assert get_invoice("700100")[:2] == (500, {"message": "internal error", "requestId": request_id})


def test_a_missing_table_setting_is_500(monkeypatch, ddb):
    monkeypatch.delenv("CUSTOMERS_TABLE")
    assert get_customer("19001")[0] == 500
    assert get_invoice("700001")[0] == 200


def test_request_id_falls_back_to_lambdas(ddb):
    class Context:
        aws_request_id = "lambda-req-1"

    event = get_event(query={"InvoiceNo": "700001"})
    del event["requestContext"]
    assert H.request_id_of(event, Context()) == "lambda-req-1"
    assert H.request_id_of(None) != H.request_id_of(None)  # no id at all: a fresh uuid each time


def test_one_summary_log_line_per_request(ddb, caplog):
    with caplog.at_level(logging.INFO):
        H.lambda_handler(load("get_invoice.json"), None)
    records = [r for r in caplog.records if r.name == "invoice_api"]
    assert len(records) == 1
    log = json.loads(records[0].getMessage())
    assert log["requestId"] == "3b9f8e21-6c4d-4a57-9e02-5d7c1a8b4f60"
    assert log["status"] == 200 and log["route"] == "/invoices" and log["key"] == "700001" and log["items"] == 2


def test_client_is_created_once_without_an_endpoint(monkeypatch):
    made = []
    monkeypatch.setattr(AWS.boto3, "client", lambda *args, **kwargs: made.append((args, kwargs)) or object())
    first = H.client("dynamodb")
    assert H.client("dynamodb") is first
    AWS.client.cache_clear()
    assert len(made) == 1 and made[0][0] == ("dynamodb",) and "endpoint_url" not in made[0][1]


def test_handler_uses_only_stdlib_and_boto3():
    source = (LAMBDA_DIR / "handler.py").read_text()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines()
               if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "dataclasses", "json", "logging", "os", "re", "time", "decimal", "typing",
                       "boto3", "shared"}
    assert "endpoint_url=" not in source
    assert len(source.splitlines()) <= 260


# ---------------------------------------------------------------------------
# moto: the real boto3 client against an in-process DynamoDB
# ---------------------------------------------------------------------------


def test_against_moto_dynamodb(monkeypatch):
    import boto3
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for table, (hash_key, sort_key) in KEYS.items():
            client.create_table(
                TableName=table, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": hash_key, "AttributeType": "S"},
                                      {"AttributeName": sort_key, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": hash_key, "KeyType": "HASH"},
                           {"AttributeName": sort_key, "KeyType": "RANGE"}],
            )
        for table, name in ((INVOICES, "get_invoice_items.json"), (CUSTOMERS, "get_customer_items.json")):
            for item in load(name):
                client.put_item(TableName=table, Item=item)
        AWS.client.cache_clear()
        answers = {name: H.lambda_handler(load(f"{name}.json"), None) for name in SAMPLES}
        missing = get_invoice("700999")
    for name, answer in answers.items():
        expected = load(f"{name}_response.json")
        assert answer["statusCode"] == expected["statusCode"], answer["body"]
        assert answer["headers"] == expected["headers"]
        parse = {"parse_float": Decimal}
        assert json.loads(answer["body"], **parse) == json.loads(expected["body"], **parse)
    assert missing[:2] == (404, {"message": "invoice 700999 not found"})
