"""The embedded AWS refuses and waits as AWS does: Lambda, API Gateway, Kinesis (plain boto3).

Each test calls the embedded AWS the way any AWS client would and expects AWS's state, or
AWS's error code and message. States that last a moment (Pending, InProgress, CREATING) are
watched on a private embedded AWS whose delays are a fifth of AWS's (``ECOM_TIME_SCALE``),
long enough to see them every time.
"""

from __future__ import annotations

import base64
import io
import json
import textwrap
import time
import zipfile

import pytest
import requests
from botocore.exceptions import ClientError

from ecomlib import aws, deploy
from ecomlib.local import server

HANDLER = textwrap.dedent('''
    import json, time

    def lambda_handler(event, context):
        if isinstance(event, dict) and event.get("httpMethod"):
            kind = event["path"].rsplit("/", 1)[-1]
            if kind == "slow":
                time.sleep(3)
            answers = {
                "dict-body": {"statusCode": 200, "body": {"a": 1}},
                "no-status": {"body": "fine"},
                "not-an-object": ["statusCode", 200],
                "number-header": {"statusCode": 200, "headers": {"X-Count": 3}, "body": "ok"},
                "nested-header": {"statusCode": 200, "headers": {"X-Bad": {"a": 1}}, "body": "ok"},
                "huge": {"statusCode": 200, "body": "x" * (7 * 1024 * 1024)},
                "bad-base64": {"statusCode": 200, "body": "***", "isBase64Encoded": True},
            }
            return answers.get(kind, {"statusCode": 200, "body": json.dumps({"kind": kind})})
        if event.get("size"):
            return "x" * event["size"]
        return {"ok": True, "received": len(json.dumps(event))}
    ''')


def zipped(code: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", code)
    return buffer.getvalue()


def role_arn() -> str:
    iam = aws.client("iam")
    try:
        return iam.get_role(RoleName="ecom-test-strict-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName="ecom-test-strict-role",
                               AssumeRolePolicyDocument=json.dumps(deploy.LAMBDA_TRUST_POLICY))["Role"]["Arn"]


def create(name: str, code: str = HANDLER, timeout: int = 10) -> dict:
    role = role_arn()
    return deploy.retry_while_propagating(lambda: aws.client("lambda").create_function(  # a new role: wait
        FunctionName=name, Runtime=deploy.RUNTIME, Role=role, Handler="handler.lambda_handler",
        Code={"ZipFile": zipped(code)}, Timeout=timeout), f"creating {name}")


def refused(call, code: str) -> str:
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["Error"]["Code"] == code, error.value.response
    return error.value.response["Error"]["Message"]


@pytest.fixture()
def slow_aws(tmp_path, monkeypatch):
    """A private embedded AWS whose delays are a fifth of AWS's (Lambda Pending: 0.4 s)."""
    monkeypatch.setenv("ECOM_HOME", str(tmp_path))
    monkeypatch.setenv("ECOM_TIME_SCALE", "0.2")
    server.start()
    yield
    server.stop()


@pytest.fixture()
def function():
    name = "ecom-test-strict"
    create(name)
    aws.client("lambda").get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    yield name
    aws.client("lambda").delete_function(FunctionName=name)


# ---- Lambda ----------------------------------------------------------------------------


def test_a_new_function_is_pending_and_an_update_in_progress_refuses_what_aws_refuses(slow_aws):
    lam = aws.client("lambda")
    created = create("ecom-test-pending")
    assert (created["State"], created["StateReasonCode"]) == ("Pending", "Creating")
    assert created["StateReason"] == "The function is being created."
    message = refused(lambda: lam.invoke(FunctionName="ecom-test-pending", Payload=b"{}"), "ResourceConflictException")
    assert message == ("The operation cannot be performed at this time. "
                       "The function is currently in the following state: Pending")
    arn = created["FunctionArn"]
    message = refused(lambda: lam.update_function_configuration(FunctionName="ecom-test-pending", Timeout=5),
                      "ResourceConflictException")
    assert message == f"The operation cannot be performed at this time. An update is in progress for resource: {arn}"

    lam.get_waiter("function_active_v2").wait(FunctionName="ecom-test-pending", WaiterConfig={"Delay": 0.1})
    config = lam.get_function_configuration(FunctionName="ecom-test-pending")
    assert (config["State"], config["LastUpdateStatus"]) == ("Active", "Successful")

    updated = lam.update_function_configuration(FunctionName="ecom-test-pending", Timeout=5)
    assert (updated["State"], updated["LastUpdateStatus"]) == ("Active", "InProgress")
    refused(lambda: lam.update_function_code(FunctionName="ecom-test-pending", ZipFile=zipped(HANDLER)),
            "ResourceConflictException")
    lam.get_waiter("function_updated_v2").wait(FunctionName="ecom-test-pending", WaiterConfig={"Delay": 0.1})
    assert json.loads(lam.invoke(FunctionName="ecom-test-pending", Payload=b"{}")["Payload"].read())["ok"]


def test_the_course_deploys_and_redeploys_a_function_with_the_states_on(slow_aws):
    """deploy.deploy_function waits for Active and for each update (config, then code)."""
    role = role_arn()
    for _ in range(2):  # create, then update configuration and code
        config = deploy.deploy_function("invoice_api", role, {"INVOICES_TABLE": "t", "CUSTOMERS_TABLE": "c"})
        assert (config["State"], config["LastUpdateStatus"]) == ("Active", "Successful")
    answer = aws.client("lambda").invoke(FunctionName=deploy.function_name("invoice_api"), Payload=b"{}")
    assert answer["StatusCode"] == 200


def test_reserved_concurrency_keeps_a_new_accounts_unreserved_minimum(function):
    lam = aws.client("lambda")
    message = refused(lambda: lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=1),
                      "InvalidParameterValueException")
    assert message == ("Specified ReservedConcurrentExecutions for function decreases account's "
                       "UnreservedConcurrentExecution below its minimum value of [10].")
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=function)


def test_synchronous_invoke_requests_and_responses_are_limited_to_6_mb(function):
    lam = aws.client("lambda")
    limit = 6 * 1024 * 1024
    over = json.dumps({"pad": "x" * limit}).encode()
    message = refused(lambda: lam.invoke(FunctionName=function, Payload=over), "RequestEntityTooLargeException")
    assert message == f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
    under = json.dumps({"pad": "x" * (limit - 100)}).encode()
    assert json.loads(lam.invoke(FunctionName=function, Payload=under)["Payload"].read())["ok"]

    answer = lam.invoke(FunctionName=function, Payload=json.dumps({"size": limit + 1}).encode())
    assert answer["FunctionError"] == "Unhandled"
    assert json.loads(answer["Payload"].read()) == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge"}
    answer = lam.invoke(FunctionName=function, Payload=json.dumps({"size": limit - 2}).encode())  # "x...x" + quotes
    assert "FunctionError" not in answer and len(answer["Payload"].read()) == limit


# ---- API Gateway -----------------------------------------------------------------------


@pytest.fixture()
def api(function):
    apigw = aws.client("apigateway")
    api_id = deploy.ensure_rest_api("ecom-test-strict-api")
    arn = aws.client("lambda").get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    resource = deploy.ensure_resource(api_id, "/answers/{kind}")
    apigw.put_method(restApiId=api_id, resourceId=resource, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=api_id, resourceId=resource, httpMethod="GET", type="AWS_PROXY",
                          integrationHttpMethod="POST",
                          uri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations")
    url = deploy.deploy_stage(api_id, "dev")
    yield url
    apigw.delete_rest_api(restApiId=api_id)
    server.control("api-front/integration-timeout", {})


@pytest.mark.parametrize("kind", ["dict-body", "no-status", "not-an-object", "nested-header", "huge", "bad-base64"])
def test_a_malformed_proxy_response_is_502_internal_server_error(api, kind):
    r = requests.get(f"{api}/answers/{kind}", timeout=30)
    assert r.status_code == 502 and r.json() == {"message": "Internal server error"}
    assert r.headers["x-amzn-ErrorType"] == "InternalServerErrorException"


def test_a_proxy_response_with_a_string_body_passes(api):
    r = requests.get(f"{api}/answers/fine", timeout=30)
    assert r.status_code == 200 and r.json() == {"kind": "fine"} and "x-amzn-ErrorType" not in r.headers
    r = requests.get(f"{api}/answers/number-header", timeout=30)
    assert r.status_code == 200 and r.headers["X-Count"] == "3"


def test_the_integration_timeout_gives_504_while_the_function_runs_on(api):
    server.control("api-front/integration-timeout", {"seconds": 1})  # AWS: 29 s
    started = time.monotonic()
    r = requests.get(f"{api}/answers/slow", timeout=30)
    assert time.monotonic() - started < 2.5
    assert r.status_code == 504 and r.json() == {"message": "Endpoint request timed out"}
    assert r.headers["x-amzn-ErrorType"] == "InternalServerErrorException"
    with pytest.raises(ValueError, match="at most 29 s"):
        server.control("api-front/integration-timeout", {"seconds": 60})


def test_gateway_errors_name_their_type(api):
    r = requests.get(api.rsplit("/", 1)[0] + "/nostage/answers/x", timeout=10)
    assert r.status_code == 403 and r.headers["x-amzn-ErrorType"] == "ForbiddenException"
    r = requests.get(api + "/nowhere", timeout=10)
    assert r.status_code == 403 and r.json() == {"message": "Missing Authentication Token"}
    assert r.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


# ---- Kinesis ---------------------------------------------------------------------------


def test_a_new_stream_is_creating_then_active(slow_aws):
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName="ecom-test-creating", ShardCount=1)
    summary = kinesis.describe_stream_summary(StreamName="ecom-test-creating")["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "CREATING"
    message = refused(lambda: kinesis.put_record(StreamName="ecom-test-creating", Data=b"x", PartitionKey="k"),
                      "ResourceNotFoundException")
    assert message.startswith("Stream ecom-test-creating under account ") and message.endswith(" not found.")
    kinesis.get_waiter("stream_exists").wait(StreamName="ecom-test-creating", WaiterConfig={"Delay": 0.2})
    assert kinesis.describe_stream_summary(StreamName="ecom-test-creating")[
        "StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    kinesis.put_record(StreamName="ecom-test-creating", Data=b"x", PartitionKey="k")


def test_sequence_numbers_are_long_increasing_digit_strings():
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName="ecom-test-sequence", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="ecom-test-sequence", WaiterConfig={"Delay": 0.1})
    try:
        put = kinesis.put_records(StreamName="ecom-test-sequence",
                                  Records=[{"Data": f"{i}".encode(), "PartitionKey": "k"} for i in range(3)])
        numbers = [r["SequenceNumber"] for r in put["Records"]]
        assert all(n.isdigit() and len(n) == 56 for n in numbers)
        assert [int(n) for n in numbers] == sorted(int(n) for n in numbers) and len(set(numbers)) == 3
        shard = kinesis.list_shards(StreamName="ecom-test-sequence")["Shards"][0]
        assert shard["SequenceNumberRange"]["StartingSequenceNumber"] == numbers[0]
        iterator = kinesis.get_shard_iterator(StreamName="ecom-test-sequence", ShardId=shard["ShardId"],
                                              ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                              StartingSequenceNumber=numbers[0])["ShardIterator"]
        assert [r["Data"] for r in kinesis.get_records(ShardIterator=iterator)["Records"]] == [b"1", b"2"]
        iterator = kinesis.get_shard_iterator(StreamName="ecom-test-sequence", ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        assert [r["SequenceNumber"] for r in kinesis.get_records(ShardIterator=iterator)["Records"]] == numbers
    finally:
        kinesis.delete_stream(StreamName="ecom-test-sequence")


def test_the_mapping_event_has_aws_sequence_numbers_and_arrival_in_seconds_to_the_ms():
    from ecomlib.local.stream_pollers import _event

    class Record:
        partition_key, data, sequence_number = "k", b"x", 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575
        created_at = 1_700_000_000.123456

    class Item:
        class mapping:
            event_source_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/s"
            uuid = "u"

        class shard:
            shard_id = "shardId-000000000000"

    class Fn:
        role, function_arn = "arn:aws:iam::123456789012:role/r", "arn:aws:lambda:us-east-1:123456789012:function:f"

    record = _event(Item, [Record], Fn)["Records"][0]["kinesis"]
    assert record["approximateArrivalTimestamp"] == 1_700_000_000.123
    assert record["sequenceNumber"] == str(Record.sequence_number)
    assert base64.b64decode(record["data"]) == b"x"
