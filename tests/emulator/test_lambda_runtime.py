"""The embedded AWS runs deployed Lambda code and serves API Gateway stages."""

from __future__ import annotations

import base64
import io
import json
import textwrap
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ecomlib import aws, deploy

ROLE_ARN = None

HANDLER = textwrap.dedent('''
    import json, logging, os, time
    import boto3

    logger = logging.getLogger()
    logger.setLevel(logging.INFO)
    CALLS = []  # module state lives as long as the execution environment

    def lambda_handler(event, context):
        CALLS.append(1)
        print("printed line", os.environ.get("GREETING"))
        logger.info("logged line")
        action = event.get("action") if isinstance(event, dict) else None
        if action == "fail":
            raise ValueError("boom")
        if action == "sleep":
            time.sleep(event["seconds"])
        if action == "s3":
            boto3.client("s3").put_object(Bucket=event["bucket"], Key=event["key"], Body=b"ran")
        if action == "exit":
            os._exit(3)
        if event.get("httpMethod"):
            if event["path"].endswith("/broken"):
                return "not a proxy response"
            return {"statusCode": 201, "headers": {"X-Test": "yes"},
                    "body": json.dumps({k: event[k] for k in ("path", "httpMethod", "queryStringParameters",
                                        "pathParameters", "body", "isBase64Encoded", "resource")})}
        return {
            "version": VERSION, "greeting": os.environ.get("GREETING"), "other": os.environ.get("OTHER"),
            "name": context.function_name, "request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(), "calls": len(CALLS),
            "streams": boto3.client("kinesis").list_streams()["StreamNames"],
            "endpoint_set": bool(os.environ.get("AWS_ENDPOINT_URL")),
        }
    ''')


def zipped(code: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", code)
    return buffer.getvalue()


# What the test functions' code calls (IAM is enforced: a call its role does not allow fails).
TEST_ROLE_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["kinesis:ListStreams"], "Resource": "*"},
    {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "arn:aws:s3:::ecom-test-*/*"}]}


def role_arn() -> str:
    iam = aws.client("iam")
    try:
        return iam.get_role(RoleName="ecom-test-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName="ecom-test-role",
                              AssumeRolePolicyDocument=json.dumps(deploy.LAMBDA_TRUST_POLICY))["Role"]["Arn"]
        iam.put_role_policy(RoleName="ecom-test-role", PolicyName="test", PolicyDocument=json.dumps(TEST_ROLE_POLICY))
        return arn


def create_function(**kwargs) -> dict:
    """CreateFunction, retried while its role is too new for Lambda to assume (IAM takes a few
    seconds to propagate a new role: InvalidParameterValueException until then)."""
    lam = aws.client("lambda")
    deadline = time.monotonic() + 60
    while True:
        try:
            return lam.create_function(**kwargs)
        except lam.exceptions.InvalidParameterValueException as error:
            if "cannot be assumed" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture()
def make_function():
    lam = aws.client("lambda")
    created = []

    def make(name: str, code: str = HANDLER, version: int = 1, env: dict | None = None, timeout: int = 3):
        create_function(
            FunctionName=name, Runtime="python3.11", Role=role_arn(), Handler="handler.lambda_handler",
            Code={"ZipFile": zipped(code.replace("VERSION", str(version)))}, Timeout=timeout,
            Environment={"Variables": env or {}},
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})  # Pending first
        created.append(name)
        return name

    yield make
    for name in created:
        lam.delete_function(FunctionName=name)


def invoke(name: str, event: dict, **kwargs) -> tuple[dict, dict]:
    response = aws.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kwargs)
    return response, json.loads(response["Payload"].read() or b"null")


def test_invoke_runs_the_deployed_code_with_its_configuration(make_function):
    aws.client("kinesis").create_stream(StreamName="ecom-test-visible", ShardCount=1)
    aws.client("kinesis").get_waiter("stream_exists").wait(StreamName="ecom-test-visible", WaiterConfig={"Delay": 0.1})
    name = make_function("ecom-test-run", env={"GREETING": "hello"})
    response, result = invoke(name, {})
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert result["greeting"] == "hello" and result["name"] == name
    assert result["endpoint_set"] and "ecom-test-visible" in result["streams"]
    assert 0 < result["remaining_ms"] <= 3000
    assert len(result["request_id"]) == 36
    _, again = invoke(name, {})
    assert again["calls"] == 2, "a warm execution environment keeps module state"
    aws.client("kinesis").delete_stream(StreamName="ecom-test-visible")


def test_functions_are_isolated_from_each_other(make_function):
    a = make_function("ecom-test-a", version=1, env={"GREETING": "from a"})
    b = make_function("ecom-test-b", version=2, env={"OTHER": "from b"})
    _, ra = invoke(a, {})
    _, rb = invoke(b, {})
    assert (ra["version"], ra["greeting"], ra["other"]) == (1, "from a", None)
    assert (rb["version"], rb["greeting"], rb["other"]) == (2, None, "from b")
    assert ra["calls"] == 1 and rb["calls"] == 1


def test_errors_are_shaped_like_aws(make_function):
    name = make_function("ecom-test-error")
    response, error = invoke(name, {"action": "fail"})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "ValueError" and error["errorMessage"] == "boom"
    assert error["stackTrace"] and all("lambda_worker" not in line for line in error["stackTrace"])
    assert "handler.py" in error["stackTrace"][-1]

    response, error = invoke(name, {"action": "exit"})
    assert response["FunctionError"] == "Unhandled" and error["errorType"] == "Runtime.ExitError"
    _, ok = invoke(name, {})
    assert ok["version"] == 1, "a new execution environment replaces the one that died"


def test_import_error_is_reported(make_function):
    name = make_function("ecom-test-import", code="import no_such_module\n")
    response, error = invoke(name, {})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "no_such_module" in error["errorMessage"]


def test_timeout_is_enforced(make_function):
    # 3 s: a new environment's start (Python, boto3) must fit beside the handler on a busy machine
    name = make_function("ecom-test-timeout", timeout=3)
    started = time.monotonic()
    response, error = invoke(name, {"action": "sleep", "seconds": 30})
    assert time.monotonic() - started < 15
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout" and "3.00 seconds" in error["errorMessage"]
    _, ok = invoke(name, {})
    assert ok["calls"] == 1, "the timed-out environment was replaced"


def test_logs_go_to_cloudwatch(make_function):
    name = make_function("ecom-test-logs", env={"GREETING": "logged"})
    response, result = invoke(name, {}, LogType="Tail")
    tail = base64.b64decode(response["LogResult"]).decode()
    assert f"START RequestId: {result['request_id']}" in tail and "REPORT RequestId" in tail
    logs = aws.client("logs")
    group = f"/aws/lambda/{name}"
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    messages = [e["message"] for s in streams
                for e in logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"]]
    assert "printed line logged" in messages
    assert any(m.startswith("[INFO]") and m.endswith("logged line") and result["request_id"] in m for m in messages)
    assert any(m.startswith(f"END RequestId: {result['request_id']}") for m in messages)


def test_a_cold_start_says_which_python_runs_the_code(make_function):
    """AWS logs INIT_START with the runtime's version; here the local Python's, with a warning
    when the function declares another runtime (python3.11 here: the tests' functions)."""
    import sys

    name = make_function("ecom-test-init")
    first, _ = invoke(name, {}, LogType="Tail")
    second, _ = invoke(name, {}, LogType="Tail")  # a warm start: no INIT_START
    cold = base64.b64decode(first["LogResult"]).decode()
    assert cold.startswith(f"INIT_START Runtime Version: python:{sys.version.split()[0]}")
    local = "{}.{}".format(*sys.version_info[:2])
    if local != "3.11":
        assert f"WARNING: the function declares python3.11; here it runs on Python {local}" in cold
    else:
        assert "WARNING" not in cold.splitlines()[0]
    assert "INIT_START" not in base64.b64decode(second["LogResult"]).decode()
    from ecomlib.local.lambda_runtime import init_line

    assert f"WARNING: the function declares python3.13; here it runs on Python {local}" in init_line("python3.13") \
        or local == "3.13"


def test_event_invocation_runs_in_the_background(make_function):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="ecom-test-async")
    name = make_function("ecom-test-async")
    response = aws.client("lambda").invoke(
        FunctionName=name, InvocationType="Event",
        Payload=json.dumps({"action": "s3", "bucket": "ecom-test-async", "key": "done"}).encode())
    assert response["StatusCode"] == 202
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if s3.list_objects_v2(Bucket="ecom-test-async").get("KeyCount"):
            break
        time.sleep(0.1)
    assert s3.get_object(Bucket="ecom-test-async", Key="done")["Body"].read() == b"ran"


def test_redeployed_code_takes_effect_on_next_invoke(make_function):
    name = make_function("ecom-test-redeploy", version=1)
    assert invoke(name, {})[1]["version"] == 1
    lam = aws.client("lambda")
    lam.update_function_code(FunctionName=name, ZipFile=zipped(HANDLER.replace("VERSION", "2")))
    assert invoke(name, {})[1]["version"] == 2


@pytest.fixture()
def api(make_function):
    name = make_function("ecom-test-api")
    api_id = deploy.ensure_rest_api("ecom-test-api")
    apigw = aws.client("apigateway")
    arn = aws.client("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    for path, method in [("/items", "POST"), ("/items", "GET"), ("/items/{ItemId}", "GET"),
                         ("/files/{proxy+}", "ANY"), ("/broken", "GET")]:
        resource = deploy.ensure_resource(api_id, path)
        apigw.put_method(restApiId=api_id, resourceId=resource, httpMethod=method, authorizationType="NONE")
        apigw.put_integration(restApiId=api_id, resourceId=resource, httpMethod=method, type="AWS_PROXY",
                              integrationHttpMethod="POST",
                              uri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations")
    url = deploy.deploy_stage(api_id, "dev")
    yield url
    apigw.delete_rest_api(restApiId=api_id)


def test_api_front_routes_to_the_function(api):
    from ecomlib.local import server

    assert server.status()["apis"]["ecom-test-api"] == api
    assert api.startswith("http://127.0.0.1:") and api.endswith("/dev")

    r = requests.get(api + "/items/42?verbose=1&verbose=2", timeout=10)
    assert r.status_code == 201 and r.headers["X-Test"] == "yes"
    event = r.json()
    assert event["resource"] == "/items/{ItemId}" and event["path"] == "/items/42"
    assert event["pathParameters"] == {"ItemId": "42"}
    assert event["queryStringParameters"] == {"verbose": "2"}

    r = requests.post(api + "/items", data=json.dumps({"a": 1}), timeout=10)
    assert r.json()["body"] == '{"a": 1}' and r.json()["isBase64Encoded"] is False

    r = requests.post(api + "/items", data=b"\xff\xfe not utf-8", timeout=10)
    assert r.json()["isBase64Encoded"] is True
    assert base64.b64decode(r.json()["body"]) == b"\xff\xfe not utf-8"

    r = requests.delete(api + "/files/a/b/c.txt", timeout=10)
    assert r.json()["pathParameters"] == {"proxy": "a/b/c.txt"} and r.json()["httpMethod"] == "DELETE"


def test_api_front_errors_are_aws_shaped(api):
    assert requests.get(api + "/nowhere", timeout=10).json() == {"message": "Missing Authentication Token"}
    assert requests.delete(api + "/items", timeout=10).status_code == 403
    wrong_stage = api.rsplit("/", 1)[0] + "/prod/items"
    assert requests.get(wrong_stage, timeout=10).status_code == 403
    broken = requests.get(api + "/broken", timeout=10)
    assert broken.status_code == 502 and broken.json() == {"message": "Internal server error"}
    huge = requests.post(api + "/items", data=b"x" * (10 * 1024 * 1024 + 1), timeout=30)
    assert huge.status_code == 413


@pytest.mark.slow
def test_api_front_serves_concurrent_clients(api):
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: requests.get(f"{api}/items/{i}", timeout=30).status_code, range(64)))
    assert statuses == [201] * 64
