"""DynamoDB Scan and Query pages on the embedded AWS: the same answers as moto's own code,
page for page, and a page that costs the same whether it is the first or the last.

The embedded AWS patches how moto finds a page (``ecomlib.local.patches``: the table's
order is kept, a page starts by bisection after ``ExclusiveStartKey``). Every call here is
made twice: through boto3 against the embedded AWS, and against plain moto in this process
(``mock_aws``, unpatched); the answers must be equal.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid

import boto3
import pytest
from moto import mock_aws

from ecomlib import aws

PAD = "x" * 20_000  # ~20 KB items: a 1 MB page holds ~50 of them


def _create(ddb, name: str, range_key: bool = True) -> None:
    attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    if range_key:
        attributes.append({"AttributeName": "sk", "AttributeType": "N"})
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", AttributeDefinitions=attributes,
                     KeySchema=schema)


def _items(range_key: bool) -> list[dict]:
    items = []
    for i in range(210):
        item = {"pk": {"S": f"p{i % 3}" if range_key else f"p{i:04d}"}, "n": {"N": str(i % 10)},
                "pad": {"S": PAD}}
        if range_key:
            item["sk"] = {"N": str((i * 37) % 1000)}
        items.append(item)
    return items


def _pages(ddb, operation: str, **kwargs) -> list[dict]:
    """Every page of a Scan or Query, as the parts AWS defines (no metadata)."""
    pages = []
    while True:
        page = getattr(ddb, operation)(**kwargs)
        pages.append({k: page.get(k) for k in ("Items", "Count", "ScannedCount", "LastEvaluatedKey")})
        if "LastEvaluatedKey" not in page:
            return pages
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


READS = {
    "scan": ("scan", {}),
    "scan limit": ("scan", {"Limit": 37}),
    "scan filter": ("scan", {"FilterExpression": "n = :n", "ExpressionAttributeValues": {":n": {"N": "3"}}}),
    "scan filter limit": ("scan", {"FilterExpression": "n < :n", "Limit": 50,
                                   "ExpressionAttributeValues": {":n": {"N": "4"}}}),
    "scan count": ("scan", {"Select": "COUNT"}),
    "scan consistent projection": ("scan", {"ConsistentRead": True, "ProjectionExpression": "pk, n"}),
    "scan segment": ("scan", {"Segment": 1, "TotalSegments": 3}),
    # a projection without the keys still pages by whole items read, and says where to resume
    "scan projection no key": ("scan", {"ProjectionExpression": "#n", "ExpressionAttributeNames": {"#n": "n"},
                                        "Limit": 60}),
    "scan projection missing": ("scan", {"ProjectionExpression": "nothere, pk"}),
    # a filter reads the whole item, even the attributes the projection leaves out
    "scan filter projection": ("scan", {"FilterExpression": "n = :n", "ProjectionExpression": "pk", "Limit": 45,
                                        "ExpressionAttributeValues": {":n": {"N": "7"}}}),
    "scan count filter": ("scan", {"Select": "COUNT", "FilterExpression": "NOT n IN (:a, :b)",
                                   "ExpressionAttributeValues": {":a": {"N": "1"}, ":b": {"N": "2"}}}),
    "query": ("query", {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p1"}}}),
    "query limit backward": ("query", {"KeyConditionExpression": "pk = :p", "Limit": 25, "ScanIndexForward": False,
                                       "ExpressionAttributeValues": {":p": {"S": "p2"}}}),
    "query between": ("query", {"KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b", "Limit": 20,
                                "ExpressionAttributeValues": {":p": {"S": "p0"}, ":a": {"N": "100"},
                                                              ":b": {"N": "800"}}}),
    "query greater backward": ("query", {"KeyConditionExpression": "pk = :p AND sk > :a",
                                         "ScanIndexForward": False,
                                         "ExpressionAttributeValues": {":p": {"S": "p0"}, ":a": {"N": "300"}}}),
    "query filter count": ("query", {"KeyConditionExpression": "pk = :p", "FilterExpression": "n = :n",
                                     "Select": "COUNT", "Limit": 30,
                                     "ExpressionAttributeValues": {":p": {"S": "p1"}, ":n": {"N": "5"}}}),
}


def _run_all(ddb, name: str) -> dict:
    """Every read of READS, then a scan resumed from a key whose item was deleted meanwhile,
    and the pages after a write in the middle of a scan."""
    out = {}
    for label, (operation, kwargs) in READS.items():
        out[label] = _pages(ddb, operation, TableName=name, **json.loads(json.dumps(kwargs)))
    first = ddb.scan(TableName=name, Limit=40)
    ddb.delete_item(TableName=name, Key=first["LastEvaluatedKey"])
    out["resume after deleted"] = _pages(ddb, "scan", TableName=name, Limit=40,
                                         ExclusiveStartKey=first["LastEvaluatedKey"])
    out["query after deleted"] = _pages(ddb, "query", TableName=name, KeyConditionExpression="pk = :p",
                                        ExpressionAttributeValues={":p": first["LastEvaluatedKey"]["pk"]},
                                        ExclusiveStartKey=first["LastEvaluatedKey"])
    page = ddb.scan(TableName=name, Limit=100)
    ddb.put_item(TableName=name, Item={**page["Items"][0], "pk": {"S": "p1"}, "sk": {"N": "5000"}})
    ddb.put_item(TableName=name, Item={**page["Items"][0], "pk": {"S": "p0"}, "sk": {"N": "5000"}})
    out["after a write"] = _pages(ddb, "scan", TableName=name, Limit=100, ExclusiveStartKey=page["LastEvaluatedKey"])
    return out


def _run_hash_only(ddb, name: str) -> dict:
    first = ddb.scan(TableName=name, Limit=33)
    ddb.delete_item(TableName=name, Key=first["LastEvaluatedKey"])
    return {"scan": _pages(ddb, "scan", TableName=name),
            "scan limit": _pages(ddb, "scan", TableName=name, Limit=33),
            "resume after deleted": _pages(ddb, "scan", TableName=name, Limit=33,
                                           ExclusiveStartKey=first["LastEvaluatedKey"])}


def _fill(ddb, name: str, items: list[dict]) -> None:
    for start in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]})


def _both(range_key: bool, run) -> tuple[dict, dict]:
    name = f"ecom-paging-{uuid.uuid4().hex[:8]}"
    items = _items(range_key)
    embedded = aws.client("dynamodb")
    _create(embedded, name, range_key)
    try:
        _fill(embedded, name, items)
        ours = run(embedded, name)
    finally:
        embedded.delete_table(TableName=name)
    with mock_aws():
        plain = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="testing",
                             aws_secret_access_key="testing")
        _create(plain, name, range_key)
        _fill(plain, name, items)
        theirs = run(plain, name)
    return ours, theirs


@pytest.mark.slow
def test_scan_and_query_pages_are_moto_s_own():
    ours, theirs = _both(True, _run_all)
    assert set(ours) == set(theirs)
    # AWS answers Select=COUNT without Items; moto's Scan sends them (not its Query): the
    # embedded AWS leaves them out, and pages and counts stay moto's.
    assert all(p["Items"] is None for p in ours["scan count"])
    assert all(len(p["Items"]) == p["Count"] for p in theirs["scan count"])
    theirs["scan count"] = [{**p, "Items": None} for p in theirs["scan count"]]
    theirs["scan count filter"] = [{**p, "Items": None} for p in theirs["scan count filter"]]
    for label in theirs:
        assert ours[label] == theirs[label], label
    # the reads did page: by 1 MB, by Limit, with filters counted apart
    assert len(ours["scan"]) >= 4 and all(p["Count"] == p["ScannedCount"] for p in ours["scan"])
    assert len(ours["scan limit"]) == 210 // 37 + 1
    assert sum(p["Count"] for p in ours["scan filter"]) == 21
    assert sum(p["ScannedCount"] for p in ours["scan filter"]) == 210
    assert sum(p["Count"] for p in ours["scan count"]) == 210
    assert sum(p["Count"] for p in ours["scan count filter"]) == 168  # n is i % 10: two tenths left out
    assert sum(p["Count"] for p in ours["scan filter projection"]) == 21
    assert len(ours["query limit backward"]) == 70 // 25 + 1


@pytest.mark.slow
def test_hash_key_only_table_pages_are_moto_s_own():
    ours, theirs = _both(False, _run_hash_only)
    assert ours == theirs
    assert sum(p["Count"] for p in ours["scan"]) == 209
    assert len(ours["scan limit"]) == 209 // 33 + 1


SCALING = textwrap.dedent("""
    import json, sys, time
    import boto3
    from moto import mock_aws
    from ecomlib.local import patches

    patches._patch_dynamodb_query()
    patches._patch_dynamodb_scan()
    LIMIT = 50

    def cost(ddb, name, operation, **kwargs):
        '''Process seconds and items of each page of a full paged read.'''
        pages = []
        while True:
            started = time.process_time()
            page = getattr(ddb, operation)(TableName=name, Limit=LIMIT, **kwargs)
            pages.append((time.process_time() - started, page["Count"]))
            if "LastEvaluatedKey" not in page:
                return pages
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def per_item(pages):
        return sum(s for s, _ in pages) / sum(n for _, n in pages)

    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        out = {}
        for size in (int(arg) for arg in sys.argv[1:]):
            name = f"t{size}"
            ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                   {"AttributeName": "sk", "AttributeType": "N"}],
                             KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                        {"AttributeName": "sk", "KeyType": "RANGE"}])
            for start in range(0, size, 25):
                ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": {
                    "pk": {"S": f"p{i % 2}"}, "sk": {"N": str(i)},
                    "v": {"S": "value"}}}} for i in range(start, min(size, start + 25))]})
            scan = cost(ddb, name, "scan")
            query = cost(ddb, name, "query", KeyConditionExpression="pk = :p",
                         ExpressionAttributeValues={":p": {"S": "p1"}})
            out[size] = {}
            for read, pages in (("scan", scan), ("query", query)):
                quarter = len(pages) // 4  # the first and the last quarter (the last page may be short)
                out[size].update({read: per_item(pages), f"{read}_first": per_item(pages[:quarter]),
                                  f"{read}_last": per_item(pages[-quarter - 1:-1])})
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_a_page_costs_the_same_first_or_last():
    """Per item, in process CPU time (moto in one process, with the embedded AWS's patches):
    a 4,800-item table read in pages of 50 costs what a 600-item one does, and its last
    pages what its first pages do. (moto's own code: each page sorts the whole table and
    walks it up to ExclusiveStartKey, ~10x more per item at 4,800.)"""
    done = subprocess.run([sys.executable, "-c", SCALING, "600", "4800"], capture_output=True, text=True,
                          timeout=120, check=True)
    costs = json.loads(done.stdout)
    small, large = costs["600"], costs["4800"]
    for read in ("scan", "query"):
        assert large[read] < 2 * small[read], (read, costs)
        assert large[f"{read}_last"] < 2 * large[f"{read}_first"], (read, costs)


def test_a_count_scan_with_a_projection_is_refused_as_on_aws():
    """Scan's Select: with a ProjectionExpression only SPECIFIC_ATTRIBUTES is allowed."""
    ddb = aws.client("dynamodb")
    table = f"ecom-count-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    try:
        ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.1})
        ddb.put_item(TableName=table, Item={"k": {"S": "a"}, "v": {"S": "x"}})
        with pytest.raises(ddb.exceptions.ClientError) as refused:
            ddb.scan(TableName=table, Select="COUNT", ProjectionExpression="v")
        assert refused.value.response["Error"] == {
            "Code": "ValidationException",
            "Message": "Cannot specify the ProjectionExpression when choosing to get COUNT"}
        answer = ddb.scan(TableName=table, Select="COUNT")
        assert (answer["Count"], "Items" in answer) == (1, False)
    finally:
        ddb.delete_table(TableName=table)


def test_an_item_over_the_size_limit_is_refused_as_moto_refuses_it():
    """Items are weighed once when written (moto weighed each attribute as it was added): the
    same limit and the same refusal, by PutItem and by BatchWriteItem, as plain moto."""
    def run(ddb, name):
        out = []
        for size in (390_000, 410_000):
            item = {"pk": {"S": f"size{size}"}, "sk": {"N": "1"}, "a": {"S": "a" * (size // 2)},
                    "b": {"S": "b" * (size // 2)}}
            for call in (lambda: ddb.put_item(TableName=name, Item=item),
                         lambda: ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": item}}]})):
                try:
                    call()
                    out.append("ok")
                except ddb.exceptions.ClientError as error:
                    out.append((error.response["Error"]["Code"], error.response["Error"]["Message"]))
        out += ["Item" in ddb.get_item(TableName=name, Key={"pk": {"S": f"size{size}"}, "sk": {"N": "1"}},
                                       ProjectionExpression="pk") for size in (390_000, 410_000)]
        return out

    ours, theirs = _both(True, run)
    assert ours == theirs
    assert ours[:2] == ["ok", "ok"] and ours[4:] == [True, False]
    assert ours[2][0] == ours[3][0] == "ValidationException" and "size" in ours[2][1]


def test_a_batch_write_naming_one_item_twice_is_refused_as_on_aws():
    """AWS refuses a BatchWriteItem with two requests for one key (two puts, even of
    different items, or a put and a delete); moto compared whole items and let the last put
    win. The refused call writes nothing."""
    ddb = aws.client("dynamodb")
    name = f"ecom-dupes-{uuid.uuid4().hex[:8]}"
    _create(ddb, name)
    try:
        one = {"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "first"}}
        for requests in ([{"PutRequest": {"Item": one}}, {"PutRequest": {"Item": {**one, "v": {"S": "second"}}}}],
                         [{"PutRequest": {"Item": one}}, {"DeleteRequest": {"Key": {"pk": one["pk"], "sk": one["sk"]}}}],
                         [{"PutRequest": {"Item": one}}, {"PutRequest": {"Item": {**one, "sk": {"N": "1.0"}}}}]):  # 1 = 1.0
            with pytest.raises(ddb.exceptions.ClientError) as refused:
                ddb.batch_write_item(RequestItems={name: requests})
            assert refused.value.response["Error"]["Code"] == "ValidationException"
            assert refused.value.response["Error"]["Message"] == "Provided list of item keys contains duplicates"
        assert ddb.scan(TableName=name, Select="COUNT")["Count"] == 0
        # one key each: accepted (same attributes on other keys are no duplicates)
        ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": {**one, "sk": {"N": str(i)}}}}
                                                  for i in range(3)]})
        assert ddb.scan(TableName=name, Select="COUNT")["Count"] == 3
    finally:
        ddb.delete_table(TableName=name)


EVERY_KIND = {"pk": {"S": "kinds"}, "sk": {"N": "1"}, "s": {"S": "text é"}, "n": {"N": "-1.50"},
              "b": {"B": b"\x00\x01"}, "t": {"BOOL": True}, "f": {"BOOL": False}, "z": {"NULL": True},
              "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [b"x", b"y"]},
              "m": {"M": {"inner": {"S": "v"}, "deep": {"M": {"n": {"N": "3"}}}}},
              "l": {"L": [{"S": "a"}, {"N": "2"}, {"NULL": True}, {"B": b"\xff"}]}}


def test_items_of_every_attribute_kind_are_read_as_moto_reads_them():
    """Items written by BatchWriteItem and PutItem (the embedded AWS reads plain values and
    whole items its own quicker way) come back as plain moto gives them back."""
    def run(ddb, name: str) -> dict:
        _create(ddb, name)
        ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": EVERY_KIND}},
                                                  {"PutRequest": {"Item": {**EVERY_KIND, "sk": {"N": "2"}}}}]})
        ddb.put_item(TableName=name, Item={**EVERY_KIND, "sk": {"N": "3"}})
        try:
            return {"get": ddb.get_item(TableName=name, Key={"pk": {"S": "kinds"}, "sk": {"N": "2"}})["Item"],
                    "query": _pages(ddb, "query", TableName=name, KeyConditionExpression="pk = :p",
                                    ExpressionAttributeValues={":p": {"S": "kinds"}})}
        finally:
            ddb.delete_table(TableName=name)

    name = f"ecom-kinds-{uuid.uuid4().hex[:8]}"
    ours = run(aws.client("dynamodb"), name)
    with mock_aws():
        theirs = run(boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="testing",
                                  aws_secret_access_key="testing"), name)
    assert ours == theirs
    assert ours["get"]["b"] == {"B": b"\x00\x01"} and ours["get"]["m"]["M"]["deep"] == {"M": {"n": {"N": "3"}}}
    assert [item["sk"]["N"] for item in ours["query"][0]["Items"]] == ["1", "2", "3"]
