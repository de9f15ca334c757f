"""Unit tests of the Lambda ``lambda_src/stream_to_dynamodb/handler.py`` without an AWS server.

DynamoDB is replaced by small fake clients: one that behaves like the two tables
(keeps items by key, refuses more than 25 items or duplicate keys in a call), one that
leaves items unprocessed, one that raises.  The last tests run the real boto3 client
against moto in-process.  The sample event in ``lambda_src/stream_to_dynamodb/events/``
must give exactly its ``*_response.json`` and ``expected_items.json``.
"""

from __future__ import annotations

import ast
import base64
import copy
import json
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from ecomlib.deploy import load_handler

REPO = Path(__file__).resolve().parents[2]
LAMBDA_DIR = REPO / "lambda_src" / "stream_to_dynamodb"
EVENTS = LAMBDA_DIR / "events"
INVOICES = "ecom-test-invoices"
CUSTOMERS = "ecom-test-customers"
KEYS = {INVOICES: ("InvoiceNo", "Part"), CUSTOMERS: ("CustomerID", "InvoicePart")}


def plain(keys) -> list[tuple]:
    """Table keys without the parts' RowId hashes: ("700101", "1#356a192b") -> ("700101", "1")."""
    return sorted((k[0], k[1].rsplit("#", 1)[0]) for k in keys)




H = load_handler("stream_to_dynamodb")  # as in its deployment package: `shared` importable
IM = sys.modules["shared.invoice_items"]  # the data model the handler shares with batch_loader
AWS = sys.modules["shared.aws"]  # the shared client cache and backoff


# ---------------------------------------------------------------------------
# Fakes and helpers
# ---------------------------------------------------------------------------


class FakeDynamoDB:
    """Two tables in memory.  ``unprocessed(call_number, table, item) -> bool`` decides
    which puts DynamoDB "did not get to" (returned in UnprocessedItems)."""

    def __init__(self, unprocessed=None):
        self.calls: list[dict] = []
        self.tables: dict[str, dict[tuple, dict]] = {INVOICES: {}, CUSTOMERS: {}}
        self.unprocessed = unprocessed or (lambda call, table, item: False)

    def batch_write_item(self, RequestItems):  # noqa: N803 - boto3's argument name
        assert sum(len(requests) for requests in RequestItems.values()) <= 25
        self.calls.append(copy.deepcopy(RequestItems))
        left = {}
        for table, requests in RequestItems.items():
            keys = [tuple(r["PutRequest"]["Item"][k]["S"] for k in KEYS[table]) for r in requests]
            if len(set(keys)) != len(keys):  # what DynamoDB answers
                raise ClientError({"Error": {"Code": "ValidationException",
                                             "Message": "Provided list of item keys contains duplicates"}},
                                  "BatchWriteItem")
            for key, request in zip(keys, requests):
                if self.unprocessed(len(self.calls), table, request["PutRequest"]["Item"]):
                    left.setdefault(table, []).append(request)
                else:
                    self.tables[table][key] = copy.deepcopy(request["PutRequest"]["Item"])
        return {"UnprocessedItems": left}

    def items(self, table: str) -> list[dict]:
        return list(self.tables[table].values())


class RaisingDynamoDB:
    def __init__(self, code: str = "ResourceNotFoundException"):
        self.code = code
        self.calls = 0

    def batch_write_item(self, RequestItems):  # noqa: N803
        self.calls += 1
        raise ClientError({"Error": {"Code": self.code, "Message": "Requested resource not found"}},
                          "BatchWriteItem")


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("INVOICES_TABLE", INVOICES)
    monkeypatch.setenv("CUSTOMERS_TABLE", CUSTOMERS)
    monkeypatch.setattr(AWS, "_sleep", lambda seconds: None)
    AWS.client.cache_clear()


def use(monkeypatch, client):
    monkeypatch.setattr(H, "client", lambda service, **kwargs: client)
    return client


@pytest.fixture
def ddb(monkeypatch) -> FakeDynamoDB:
    return use(monkeypatch, FakeDynamoDB())


def sample() -> dict:
    return json.loads((EVENTS / "kinesis_batch.json").read_text())


def expected_items() -> dict:
    return json.loads((EVENTS / "expected_items.json").read_text())


def row(row_id: str, **changes) -> dict:
    """An invented row, as ingest_api writes it."""
    base = {"InvoiceNo": "700009", "StockCode": "52009", "Description": "INVENTED THING", "Quantity": 2,
            "InvoiceDate": "2011-04-01T08:00:00", "UnitPrice": Decimal("1.25"), "CustomerID": "19009",
            "Country": "Spain", "RowId": row_id}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def encode(rows: list[dict]) -> bytes:
    """Rows as JSON Lines like ingest_api writes them: UnitPrice a JSON number, exact digits."""
    out = []
    for r in rows:
        text = json.dumps({**r, "UnitPrice": "@@"}, separators=(",", ":"), ensure_ascii=False)
        out.append(text.replace('"@@"', format(r["UnitPrice"], "f")) + "\n")
    return "".join(out).encode()


def kinesis_record(data: bytes | str, seq: str, key: str = "700009") -> dict:
    if isinstance(data, bytes):
        data = base64.b64encode(data).decode()
    return {
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": key, "sequenceNumber": seq,
                    "data": data, "approximateArrivalTimestamp": 1718000000.5},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"shardId-000000000000:{seq}",
        "eventName": "aws:kinesis:record", "awsRegion": "us-east-1",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/r",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/ecom-invoices",
    }


def event_of(*records) -> dict:
    return {"Records": list(records)}


def failures(*seqs) -> dict:
    return {"batchItemFailures": [{"itemIdentifier": s} for s in seqs]}


# ---------------------------------------------------------------------------
# Sample event
# ---------------------------------------------------------------------------


def test_sample_event_gives_its_response_and_items(ddb):
    expected = json.loads((EVENTS / "kinesis_batch_response.json").read_text())
    assert H.lambda_handler(sample(), None) == expected == failures()
    assert ddb.items(INVOICES) == expected_items()["invoices"]
    assert ddb.items(CUSTOMERS) == expected_items()["customers"]
    # one call per table (3 and 2 items), in the typed wire format
    assert [list(call) for call in ddb.calls] == [[INVOICES], [CUSTOMERS]]
    assert [len(call[t]) for call, t in zip(ddb.calls, (INVOICES, CUSTOMERS))] == [3, 2]


def test_sample_items_follow_the_data_model():
    invoices = {i["InvoiceNo"]["S"]: i for i in expected_items()["invoices"]}
    normal, cancel, guest = invoices["700001"], invoices["C700002"], invoices["700003"]
    # every line kept: a repeated StockCode (52001) and an exact duplicate row (52002 x 3 at 0.1)
    lines = json.loads(normal["Lines"]["S"])
    assert list(lines) == ["900001", "900002", "900003", "900004"]
    assert [lines[r]["StockCode"] for r in lines] == ["52001", "52002", "52001", "52002"]
    assert lines["900002"] == lines["900004"]
    assert lines["900001"]["LineTotal"] == "15.30"  # 6 x 2.55, exactly
    assert lines["900002"]["LineTotal"] == "0.30"  # 3 x 0.1, exactly
    assert normal["Amount"] == {"N": "41.10"} and normal["LineCount"] == {"N": "4"}
    assert normal["Part"] == {"S": "900001#f4172d97"} and normal["IsCancellation"] == {"BOOL": False}
    assert cancel["IsCancellation"] == {"BOOL": True} and cancel["Amount"] == {"N": "-22.40"}
    assert json.loads(cancel["Lines"]["S"])["900006"]["Description"] is None  # null description
    assert "CustomerID" not in guest
    customers = expected_items()["customers"]
    assert [c["InvoicePart"]["S"] for c in customers] == ["700001#900001#f4172d97", "C700002#900005#c9f42660"]
    assert all(c["InvoiceNo"]["S"] != "700003" for c in customers)  # guests: Invoices only


# ---------------------------------------------------------------------------
# Pure functions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("quantity, price, total", [
    (6, "2.55", "15.30"), (3, "0.1", "0.3"), (-2, "4.95", "-9.90"), (1, "0", "0"),
    (12, "0.001", "0.012"), (5, "-11062.06", "-55310.30"), (0, "2.5", "0.0"),
])
def test_line_total_is_exact(quantity, price, total):
    assert str(IM.line_total(quantity, Decimal(price))) == total


@pytest.mark.parametrize("value, text", [
    ("2.55", "2.55"), ("2.550", "2.55"), ("0", "0.00"), ("-0.0", "0.00"), ("15.300", "15.30"),
    ("0.001", "0.001"), ("1E+3", "1000.00"), ("-11062.06", "-11062.06"), ("1.2345", "1.2345"),
])
def test_money_is_written_one_way_whatever_its_source_text(value, text):
    assert IM.money(Decimal(value)) == text


def test_amount_is_the_exact_sum():
    rows = [row(str(i), UnitPrice=Decimal("0.1"), Quantity=1) for i in range(3)]
    assert H.invoice_items(rows)[0]["Amount"] == {"N": "0.30"}  # float: 0.30000000000000004
    rows = [row(str(i), UnitPrice=Decimal("2.55"), Quantity=1) for i in range(6)]
    assert H.invoice_items(rows)[0]["Amount"] == {"N": "15.30"}


def test_decode_rows_keeps_prices_exact_and_types():
    rows = H.decode_rows(sample()["Records"][0])
    assert [r["RowId"] for r in rows] == ["900001", "900002", "900003", "900004"]
    assert rows[0]["UnitPrice"] == Decimal("2.55") and isinstance(rows[0]["UnitPrice"], Decimal)
    assert rows[0]["Quantity"] == 6
    rows = H.decode_rows(sample()["Records"][2])
    assert rows[1]["UnitPrice"] == Decimal(0) and isinstance(rows[1]["UnitPrice"], Decimal)
    assert rows[0]["CustomerID"] is None


def test_decode_rows_splits_on_newline_only():
    record = kinesis_record(encode([row("1", Description="A\u2028B\rC"), row("2")]).rstrip(b"\n"), "1")
    assert [r["Description"] for r in H.decode_rows(record)] == ["A\u2028B\rC", "INVENTED THING"]


def test_invoice_items_group_by_invoice_and_count_a_row_id_once():
    rows = [row("1"), row("2", InvoiceNo="C700010", Quantity=-1, CustomerID=None),
            row("3"), row("1")]  # RowId 1 resent in the same record
    items = H.invoice_items(rows)
    assert [(i["InvoiceNo"]["S"], i["Part"]["S"].split("#")[0]) for i in items] == [("700009", "1"), ("C700010", "2")]
    assert list(json.loads(items[0]["Lines"]["S"])) == ["1", "3"]
    assert items[0]["LineCount"] == {"N": "2"} and items[0]["Amount"] == {"N": "5.00"}
    assert items[1]["IsCancellation"] == {"BOOL": True} and "CustomerID" not in items[1]
    assert [c["CustomerID"]["S"] for c in H.customer_items(items)] == ["19009"]


def test_part_key_names_the_lines_so_a_subset_never_overwrites_them():
    whole = H.invoice_items([row("1"), row("2"), row("3")])[0]["Part"]["S"]
    again = H.invoice_items([row("1"), row("2"), row("3")])[0]["Part"]["S"]
    subset = H.invoice_items([row("1"), row("2")])[0]["Part"]["S"]
    assert whole == again and whole.startswith("1#") and subset.startswith("1#") and subset != whole


def test_invoice_date_is_the_parts_earliest():
    rows = [row("1", InvoiceDate="2011-04-01T08:01:00"), row("2", InvoiceDate="2011-04-01T08:00:00")]
    assert H.invoice_items(rows)[0]["InvoiceDate"] == {"S": "2011-04-01T08:00:00"}


def test_customer_items_carry_line_totals_and_amount():
    [invoice] = H.invoice_items([row("1"), row("2", Quantity=-3)])
    [customer] = H.customer_items([invoice])
    assert customer == {
        "CustomerID": {"S": "19009"}, "InvoicePart": {"S": f"700009#{invoice['Part']['S']}"},
        "InvoiceNo": {"S": "700009"},
        "InvoiceDate": {"S": "2011-04-01T08:00:00"}, "Country": {"S": "Spain"},
        "IsCancellation": {"BOOL": False},
        "LineTotals": {"S": '{"1":"2.50","2":"-3.75"}'}, "Amount": {"N": "-1.25"},
    }


def test_chunks():
    assert list(IM.chunks(list(range(60)), 25)) == [list(range(25)), list(range(25, 50)), list(range(50, 60))]
    assert list(IM.chunks([], 25)) == []


def test_big_invoice_is_split_into_parts_under_350_kb():
    long_text = "LONG DESCRIPTION " * 12
    rows = [row(f"r{i:04d}", StockCode=f"5{i:04d}", Description=long_text) for i in range(1500)]
    items = H.invoice_items(rows)
    assert len(items) > 1
    for item in items:
        assert len(json.dumps(item).encode()) < 350_000
        assert item["Part"]["S"] == IM.part_key([{"RowId": r} for r in json.loads(item["Lines"]["S"])])  # its own lines
    assert [r for i in items for r in json.loads(i["Lines"]["S"])] == [r["RowId"] for r in rows]  # every line, once
    assert sum(Decimal(i["Amount"]["N"]) for i in items) == Decimal("2.50") * 1500
    assert H.invoice_items(rows) == items  # deterministic
    assert len(H.customer_items(items)) == len(items)


# ---------------------------------------------------------------------------
# Idempotency, poison records, write failures
# ---------------------------------------------------------------------------


def test_replaying_the_event_gives_the_same_tables(ddb):
    H.lambda_handler(sample(), None)
    state = copy.deepcopy(ddb.tables)
    first_calls = copy.deepcopy(ddb.calls)
    H.lambda_handler(sample(), None)
    assert ddb.tables == state
    assert ddb.calls[len(first_calls):] == first_calls  # identical writes


def test_a_record_twice_in_one_batch_is_written_once_per_call(ddb):
    record = sample()["Records"][0]
    again = copy.deepcopy(record)
    again["kinesis"]["sequenceNumber"] = "49590338271490256608559692538369999999999999999999999999"
    assert H.lambda_handler(event_of(record, again), None) == failures()
    assert [(table, len(requests)) for call in ddb.calls for table, requests in call.items()] == [
        (INVOICES, 1), (CUSTOMERS, 1)]
    assert ddb.items(INVOICES) == expected_items()["invoices"][:1]


def test_many_items_are_written_25_per_call(ddb):
    records = []
    for n in range(1, 61):
        invoice = str(710000 + n)
        rows = [row(f"{n}-1", InvoiceNo=invoice), row(f"{n}-2", InvoiceNo=invoice)]
        records.append(kinesis_record(encode(rows), str(n), key=invoice))
    assert H.lambda_handler(event_of(*records), None) == failures()
    assert [sum(map(len, c.values())) for c in ddb.calls] == [25, 25, 10, 25, 25, 10]
    assert len(ddb.items(INVOICES)) == 60 and len(ddb.items(CUSTOMERS)) == 60


POISON = [
    ("***not base64***", "bad base64"),
    (base64.b64encode(b"\xff\xfe\n").decode(), "not UTF-8"),
    (b'{"InvoiceNo": "700009", oops}\n', "a line that is not JSON"),
    (b"[" * 5_000 + b"\n", "JSON nested too deeply"),
    ([{k: v for k, v in row("5").items() if k != "Country"}], "a missing field"),
    (b"", "no data"),
    (encode([row("5")]) + b"\n" + encode([row("6")]), "a blank line"),
    ([row("5", Quantity=True)], "a boolean Quantity"),
    ([row("5", UnitPrice=float("nan"))], "a NaN price"),
    ([row("5", StockCode=None)], "a null StockCode"),
    ([row("5", CustomerID=19009)], "a numeric CustomerID"),
    ([row("5", Description="X" * 20_000)], "a row too big for an item"),
    ([row("5", RowId="r" * 101)], "a RowId too long for a key"),
    ([row("5", Quantity=987654321987654321, UnitPrice=Decimal("1.123456789012345678901"))],
     "an amount over 38 digits"),
    ([row("5", UnitPrice=Decimal("1E+400"))], "a price out of DynamoDB's range"),
]


@pytest.mark.parametrize("data, why", POISON, ids=[why for _, why in POISON])
def test_poison_record_is_reported_and_the_others_written(ddb, data, why):
    if isinstance(data, list):
        data = encode(data) if "NaN" not in why else json.dumps(data[0]).encode()
    records = [kinesis_record(encode([row("1", InvoiceNo="700101")]), "17", key="700101"),
               kinesis_record(data, "18"),
               kinesis_record(encode([row("3", InvoiceNo="700103", CustomerID=None)]), "19", key="700103")]
    assert H.lambda_handler(event_of(*records), None) == failures("18")
    assert plain(ddb.tables[INVOICES]) == [("700101", "1"), ("700103", "3")]
    assert plain(ddb.tables[CUSTOMERS]) == [("19009", "700101#1")]


def test_unprocessed_items_are_retried_with_backoff(monkeypatch):
    fake = use(monkeypatch, FakeDynamoDB(
        lambda call, table, item: call == 1 and item["InvoiceNo"]["S"] == "C700002"))
    sleeps = []
    monkeypatch.setattr(AWS, "_sleep", sleeps.append)
    assert H.lambda_handler(sample(), None) == failures()
    assert sleeps == [0.05]
    # calls: invoices (3 items), invoices again (the unprocessed one), customers (2 items)
    assert [(table, len(requests)) for call in fake.calls for table, requests in call.items()] == [
        (INVOICES, 3), (INVOICES, 1), (CUSTOMERS, 2)]
    assert fake.calls[1][INVOICES][0]["PutRequest"]["Item"] == expected_items()["invoices"][1]
    assert fake.items(INVOICES) == [expected_items()["invoices"][i] for i in (0, 2, 1)]


def test_items_still_unprocessed_report_their_records(monkeypatch):
    seqs = [r["kinesis"]["sequenceNumber"] for r in sample()["Records"]]
    fake = use(monkeypatch, FakeDynamoDB(lambda call, table, item: table == CUSTOMERS
                                         and item["CustomerID"]["S"] == "19002"))
    sleeps = []
    monkeypatch.setattr(AWS, "_sleep", sleeps.append)
    assert H.lambda_handler(sample(), None) == failures(seqs[1])
    assert sleeps == [0.05, 0.1, 0.2, 0.4, 0.8]  # 6 attempts in all
    assert len(fake.calls) == 1 + 6
    assert len(fake.items(INVOICES)) == 3 and len(fake.items(CUSTOMERS)) == 1


def test_failed_item_reports_every_record_it_came_from(monkeypatch):
    record = sample()["Records"][1]
    again = copy.deepcopy(record)
    again["kinesis"]["sequenceNumber"] = "9"
    use(monkeypatch, FakeDynamoDB(lambda call, table, item: table == INVOICES))
    answer = H.lambda_handler(event_of(record, again), None)
    assert answer == failures("9", record["kinesis"]["sequenceNumber"])  # sorted as integers


def test_client_error_reports_the_chunks_records_without_crashing(monkeypatch, caplog):
    fake = use(monkeypatch, RaisingDynamoDB())
    seqs = [r["kinesis"]["sequenceNumber"] for r in sample()["Records"]]
    assert H.lambda_handler(sample(), None) == failures(*seqs)
    assert fake.calls == 2  # one call per table, not retried
    assert "ResourceNotFoundException" in caplog.text


def test_missing_table_setting_raises(ddb, monkeypatch):
    monkeypatch.delenv("CUSTOMERS_TABLE")
    with pytest.raises(RuntimeError, match="CUSTOMERS_TABLE"):
        H.lambda_handler(sample(), None)


def test_empty_batch_makes_no_call(ddb):
    assert H.lambda_handler({"Records": []}, None) == failures()
    assert ddb.calls == []


# ---------------------------------------------------------------------------
# Module hygiene
# ---------------------------------------------------------------------------


def _globals_snapshot() -> dict:
    return {name: copy.deepcopy(value) if isinstance(value, (list, dict, set)) else id(value)
            for name, value in vars(H).items() if name != "__builtins__"}


def test_no_module_level_state_grows_across_invocations(ddb):
    before = _globals_snapshot()
    H.lambda_handler(sample(), None)
    H.lambda_handler(sample(), None)
    assert _globals_snapshot() == before


def test_one_summary_log_line_without_row_data(ddb, caplog):
    caplog.set_level("INFO")

    class Context:
        aws_request_id = "req-ddb-1"

    H.lambda_handler(sample(), Context())
    lines = [r.getMessage() for r in caplog.records if "req-ddb-1" in r.getMessage()]
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["records"] == 3 and summary["rows"] == 8
    assert summary["items_written"] == {INVOICES: 3, CUSTOMERS: 2}
    assert summary["failed_records"] == 0
    assert "LANTERN" not in caplog.text and "19001" not in caplog.text


def test_handler_imports_only_stdlib_and_boto3():
    tree = ast.parse((LAMBDA_DIR / "handler.py").read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}
    assert modules - set(sys.stdlib_module_names) == {"shared"}
    shared = ast.parse(Path(IM.__file__).read_text())
    modules = {node.module.split(".")[0] for node in ast.walk(shared) if isinstance(node, ast.ImportFrom) and node.module}
    modules |= {alias.name.split(".")[0] for node in ast.walk(shared) if isinstance(node, ast.Import) for alias in node.names}
    assert modules - set(sys.stdlib_module_names) == {"botocore", "shared"}


def test_dynamodb_client_is_created_once_without_endpoint(monkeypatch):
    made = []
    monkeypatch.setattr(AWS.boto3, "client", lambda *a, **k: made.append((a, k)) or object())
    first = H.client("dynamodb")
    assert H.client("dynamodb") is first
    AWS.client.cache_clear()
    assert len(made) == 1 and made[0][0] == ("dynamodb",) and "endpoint_url" not in made[0][1]


# ---------------------------------------------------------------------------
# The real boto3 client against moto (in-process, no server)
# ---------------------------------------------------------------------------


def _plain(item: dict) -> dict:
    from boto3.dynamodb.types import TypeDeserializer

    return {k: TypeDeserializer().deserialize(v) for k, v in item.items()}


@pytest.fixture
def moto_tables(monkeypatch):
    import boto3
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb")
        for table, (hash_key, range_key) in KEYS.items():
            client.create_table(
                TableName=table, BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": hash_key, "KeyType": "HASH"},
                           {"AttributeName": range_key, "KeyType": "RANGE"}],
                AttributeDefinitions=[{"AttributeName": hash_key, "AttributeType": "S"},
                                      {"AttributeName": range_key, "AttributeType": "S"}])
        yield client


def test_items_are_valid_for_the_real_api(moto_tables):
    client = moto_tables
    assert H.lambda_handler(sample(), None) == failures()
    assert H.lambda_handler(sample(), None) == failures()  # a replay changes nothing
    for name, table in (("invoices", INVOICES), ("customers", CUSTOMERS)):
        stored = client.scan(TableName=table)["Items"]
        key = KEYS[table]
        got = sorted((_plain(i) for i in stored), key=lambda i: (i[key[0]], i[key[1]]))
        want = sorted((_plain(i) for i in expected_items()[name]), key=lambda i: (i[key[0]], i[key[1]]))
        assert got == want
    key = {"InvoiceNo": {"S": "700001"}, "Part": {"S": "900001#f4172d97"}}
    item = client.get_item(TableName=INVOICES, Key=key)["Item"]
    assert Decimal(item["Amount"]["N"]) == Decimal("41.10")
    assert len(json.loads(item["Lines"]["S"])) == 4


def test_missing_table_on_the_real_api_reports_records(moto_tables, monkeypatch):
    monkeypatch.setenv("CUSTOMERS_TABLE", "no-such-table")
    seqs = [r["kinesis"]["sequenceNumber"] for r in sample()["Records"]]
    assert H.lambda_handler(sample(), None) == failures(seqs[0], seqs[1])  # the guest invoice is fine
    assert len(moto_tables.scan(TableName=INVOICES)["Items"]) == 3


def test_a_line_entry_is_the_compact_json_of_its_line():
    """``line_entry`` writes the JSON text by hand (it runs for every row): it must be exactly
    what ``compact`` writes of the line, whatever the text holds."""
    rows = [
        {"RowId": "1", "StockCode": "85123A", "Description": 'WHITE "HEART" \\ é \u2028 \x01', "Quantity": 6,
         "UnitPrice": Decimal("2.55")},
        {"RowId": "a/b", "StockCode": "POST", "Description": None, "Quantity": -3, "UnitPrice": Decimal("0.001")},
        {"RowId": "2", "StockCode": "A", "Description": "", "Quantity": 0, "UnitPrice": Decimal("-0")},
        {"RowId": "3", "StockCode": "B", "Description": "x", "Quantity": 10**18, "UnitPrice": Decimal("999999.999")},
    ]
    for row in rows:
        entry = IM.line_entry(row)
        line = {"StockCode": row["StockCode"], "Description": row["Description"], "Quantity": row["Quantity"],
                "UnitPrice": IM.money(row["UnitPrice"]),
                "LineTotal": IM.money(IM.line_total(row["Quantity"], row["UnitPrice"]))}
        assert entry == IM.compact({row["RowId"]: line})[1:-1]
        assert json.loads("{" + entry + "}")[row["RowId"]]["Description"] == row["Description"]
