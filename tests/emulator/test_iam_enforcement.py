"""IAM on the embedded AWS, on by default: a role may do only what its policies allow, by
action, resource and condition; a change takes effect after IAM's propagation delay."""

from __future__ import annotations

import io
import json
import time
import zipfile

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from ecomlib import aws, client, data, deploy, pipelines, security
from ecomlib.local import aws_time
from ecomlib.pipelines import ingest, raw_s3

pytestmark = pytest.mark.slow  # deploys every pipeline first


@pytest.fixture(scope="module")
def url():
    pipelines.teardown_all()
    url = ingest.deploy()
    raw_s3.deploy()
    yield url
    security.enforce_iam(True)
    pipelines.teardown_all()


@pytest.fixture
def lenient():
    """IAM checks off for one test (the default is on, as on AWS)."""
    assert security.enforce_iam(False) is False
    yield
    assert security.enforce_iam(True) is True


def until(send, done, timeout: float = 60):
    """Send until the answer shows a change (IAM is eventually consistent), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    answer = send()
    while not done(answer) and time.monotonic() < deadline:
        time.sleep(0.05)
        answer = send()
    return answer


def rows(n: int) -> list[dict]:
    return client.to_payload_rows(data.load(rows=n))


def set_actions(function: str, sid: str, actions: list[str]) -> None:
    """Rewrite one statement of the function's role policy (as a learner would, with boto3)."""
    policy = deploy.role_policy(function)
    for statement in policy["Statement"]:
        if statement.get("Sid") == sid:
            statement["Action"] = actions
    role = f"ecom-{function.replace('_', '-')}-role"
    aws.client("iam").put_role_policy(RoleName=role, PolicyName="least-privilege", PolicyDocument=json.dumps(policy))


def test_a_missing_permission_fails_the_call_as_on_aws(url):
    assert security.enforce_iam() is True  # on by default
    assert requests.post(url, json=rows(5), timeout=30).status_code == 200
    set_actions("ingest_api", "PutToTheInvoiceStream", ["kinesis:DescribeStream"])  # PutRecords removed
    try:
        answer = until(lambda: requests.post(url, json=rows(5), timeout=30), lambda a: a.status_code != 200)
        # Not retryable: the function is misconfigured. The answer says so, no stack trace.
        assert answer.status_code == 500
        assert "AccessDeniedException" in answer.json()["message"], answer.text
    finally:
        set_actions("ingest_api", "PutToTheInvoiceStream", ["kinesis:PutRecords"])
    answer = until(lambda: requests.post(url, json=rows(5), timeout=30), lambda a: a.status_code == 200)
    assert answer.status_code == 200


def test_without_enforcement_nothing_is_checked(url, lenient):
    set_actions("ingest_api", "PutToTheInvoiceStream", ["kinesis:DescribeStream"])
    try:
        assert requests.post(url, json=rows(5), timeout=30).status_code == 200
    finally:
        set_actions("ingest_api", "PutToTheInvoiceStream", ["kinesis:PutRecords"])


def test_in_s3_the_resource_counts_too(url):
    role = aws.client("iam").get_role(RoleName="ecom-stream-to-s3-role")["Role"]["Arn"]
    creds = aws.client("sts").assume_role(RoleArn=role, RoleSessionName="test")["Credentials"]
    s3 = boto3.client("s3", endpoint_url=aws.endpoint_url(), region_name=aws.region(),
                      aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                      aws_session_token=creds["SessionToken"])
    bucket = raw_s3.bucket_name()
    s3.put_object(Bucket=bucket, Key="raw/allowed.jsonl", Body=b"{}\n")
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket=bucket, Key="elsewhere/denied.jsonl", Body=b"{}\n")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="raw/allowed.jsonl")  # the role may only write


def test_the_course_own_calls_are_the_account_owner(url):
    assert raw_s3.bucket_name() in [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]]
    assert ingest.stream_name() in aws.client("kinesis").list_streams()["StreamNames"]


# ---- by action, resource and condition, with any service the course calls -------------------


def role_session(name: str, statements: list[dict]):
    """A boto3 session with the temporary credentials of a new role allowed ``statements``,
    once its policy has propagated."""
    iam = aws.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    try:
        deploy.delete_role(name)
    except Exception:  # noqa: BLE001
        pass
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    time.sleep(aws_time.seconds("iam_propagation"))  # the delay IAM takes (compressed here)
    creds = aws.client("sts").assume_role(RoleArn=arn, RoleSessionName="test")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=aws.region())


def denied(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as error:
        call()
    return error.value.response["Error"]["Code"], error.value.response["Error"].get("Message", "")


@pytest.fixture
def streams():
    kinesis = aws.client("kinesis")
    for name in ("ecom-iam-a", "ecom-iam-b"):
        kinesis.create_stream(StreamName=name, ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})
    yield {n: kinesis.describe_stream_summary(StreamName=n)["StreamDescriptionSummary"]["StreamARN"]
           for n in ("ecom-iam-a", "ecom-iam-b")}
    for name in ("ecom-iam-a", "ecom-iam-b"):
        kinesis.delete_stream(StreamName=name)
    deploy.delete_role("ecom-iam-test-role")


def test_a_statement_scoped_to_one_stream_allows_that_stream_only(streams):
    session = role_session("ecom-iam-test-role", [
        {"Effect": "Allow", "Action": "kinesis:PutRecord", "Resource": streams["ecom-iam-a"]}])
    kinesis = session.client("kinesis", endpoint_url=aws.endpoint_url())
    kinesis.put_record(StreamName="ecom-iam-a", Data=b"x", PartitionKey="k")
    code, message = denied(lambda: kinesis.put_record(StreamName="ecom-iam-b", Data=b"x", PartitionKey="k"))
    assert code == "AccessDeniedException"
    assert message == (f"User: arn:aws:sts::{aws.account_id()}:assumed-role/ecom-iam-test-role/test is not authorized "
                       f"to perform: kinesis:PutRecord on resource: {streams['ecom-iam-b']} because no "
                       "identity-based policy allows the kinesis:PutRecord action")
    # by ARN as well as by name; and an action the role was not given
    kinesis.put_record(StreamARN=streams["ecom-iam-a"], Data=b"x", PartitionKey="k")
    assert denied(lambda: kinesis.delete_stream(StreamName="ecom-iam-a"))[0] == "AccessDeniedException"
    assert aws.client("kinesis").describe_stream_summary(StreamName="ecom-iam-a")  # still there


def test_an_explicit_deny_wins(streams):
    session = role_session("ecom-iam-test-role", [
        {"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "kinesis:PutRecord", "Resource": streams["ecom-iam-b"]}])
    kinesis = session.client("kinesis", endpoint_url=aws.endpoint_url())
    kinesis.put_record(StreamName="ecom-iam-a", Data=b"x", PartitionKey="k")
    code, message = denied(lambda: kinesis.put_record(StreamName="ecom-iam-b", Data=b"x", PartitionKey="k"))
    assert code == "AccessDeniedException" and message.endswith("with an explicit deny in an identity-based policy")


def test_every_table_of_a_batch_write_must_be_allowed():
    ddb = aws.client("dynamodb")
    for name in ("ecom-iam-t1", "ecom-iam-t2"):
        ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
    try:
        arn = ddb.describe_table(TableName="ecom-iam-t1")["Table"]["TableArn"]
        session = role_session("ecom-iam-test-role", [
            {"Effect": "Allow", "Action": "dynamodb:BatchWriteItem", "Resource": arn}])
        role_ddb = session.client("dynamodb", endpoint_url=aws.endpoint_url())
        put = {"PutRequest": {"Item": {"k": {"S": "1"}}}}
        role_ddb.batch_write_item(RequestItems={"ecom-iam-t1": [put]})
        code, message = denied(lambda: role_ddb.batch_write_item(
            RequestItems={"ecom-iam-t1": [put], "ecom-iam-t2": [put]}))
        assert code == "AccessDeniedException" and ":table/ecom-iam-t2 " in message
        assert ddb.scan(TableName="ecom-iam-t2")["Count"] == 0
    finally:
        for name in ("ecom-iam-t1", "ecom-iam-t2"):
            ddb.delete_table(TableName=name)
        deploy.delete_role("ecom-iam-test-role")


def test_list_bucket_with_a_prefix_condition(url):
    bucket = raw_s3.bucket_name()
    session = role_session("ecom-iam-test-role", [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}",
         "Condition": {"StringLike": {"s3:prefix": ["batch/*"]}}},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/batch/*"}])
    s3 = session.client("s3", endpoint_url=aws.endpoint_url())
    try:
        assert s3.list_objects_v2(Bucket=bucket, Prefix="batch/").get("KeyCount") == 0
        assert denied(lambda: s3.list_objects_v2(Bucket=bucket))[0] == "AccessDenied"
        assert denied(lambda: s3.list_objects_v2(Bucket=bucket, Prefix="raw/"))[0] == "AccessDenied"
        # Without ListBucket on the whole bucket, a missing object is AccessDenied, not NoSuchKey.
        assert denied(lambda: s3.get_object(Bucket=bucket, Key="raw/missing.json"))[0] == "AccessDenied"
    finally:
        deploy.delete_role("ecom-iam-test-role")


# ---- propagation ----------------------------------------------------------------------------


@pytest.fixture
def slow_iam(tmp_path, monkeypatch):
    """A private embedded AWS whose IAM takes 3 s to propagate a change (AWS: ~10 s)."""
    from ecomlib.local import server

    monkeypatch.setenv("ECOM_HOME", str(tmp_path))
    monkeypatch.setenv("ECOM_TIME_SCALE", "0.3")
    server.start()
    yield
    server.stop()


def test_a_new_role_and_a_changed_policy_take_effect_after_a_delay(slow_iam):
    iam, lam = aws.client("iam"), aws.client("lambda")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kinesis:ListStreams",
                                                     "Resource": "*"}]}
    arn = iam.create_role(RoleName="fresh", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="fresh", PolicyName="p", PolicyDocument=json.dumps(allow))
    started = time.monotonic()
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return 1\n")
    create = dict(FunctionName="fresh", Role=arn, Runtime="python3.12", Handler="handler.lambda_handler",
                  Code={"ZipFile": code.getvalue()})
    with pytest.raises(ClientError) as refused:
        lam.create_function(**create)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert refused.value.response["Error"]["Message"] == "The role defined for the function cannot be assumed by Lambda."

    creds = aws.client("sts").assume_role(RoleArn=arn, RoleSessionName="test")["Credentials"]
    kinesis = boto3.client("kinesis", endpoint_url=aws.endpoint_url(), region_name=aws.region(),
                           aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                           aws_session_token=creds["SessionToken"])
    assert denied(kinesis.list_streams)[0] == "AccessDeniedException"  # the policy is not in effect yet
    assert time.monotonic() - started < 3, "too slow to see the delay"

    until(lambda: _ok(kinesis.list_streams), lambda ok: ok, timeout=20)
    assert time.monotonic() - started >= 3
    lam.create_function(**create)  # the role has propagated

    iam.delete_role_policy(RoleName="fresh", PolicyName="p")
    removed = time.monotonic()
    kinesis.list_streams()  # the old policy still applies for a while
    if time.monotonic() - removed < 3:
        until(lambda: _ok(kinesis.list_streams), lambda ok: not ok, timeout=20)
    assert denied(kinesis.list_streams)[0] == "AccessDeniedException"


def _ok(call) -> bool:
    try:
        call()
        return True
    except ClientError:
        return False


# ---- the evaluation itself (AWS's policy evaluation logic) ----------------------------------


def test_policy_evaluation_rules():
    from ecomlib.local.iam_enforcement import evaluate

    bucket = "arn:aws:s3:::ecom-b"
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket,
               "Condition": {"StringLike": {"s3:prefix": ["batch/*"]}}}
    assert evaluate([{"Statement": [listing]}], "s3:ListBucket", bucket, {"s3:prefix": ["batch/2024"]}) == "allow"
    assert evaluate([{"Statement": [listing]}], "s3:ListBucket", bucket, {"s3:prefix": ["raw/"]}) == "implicit"
    assert evaluate([{"Statement": [listing]}], "s3:ListBucket", bucket, {}) == "implicit"  # no prefix: no match
    # actions match case-insensitively with wildcards; resources case-sensitively
    star = {"Statement": {"Effect": "Allow", "Action": "Kinesis:Put*", "Resource": "arn:aws:kinesis:*:*:stream/ecom-*"}}
    assert evaluate([star], "kinesis:PutRecords", "arn:aws:kinesis:us-east-1:1:stream/ecom-x", {}) == "allow"
    assert evaluate([star], "kinesis:PutRecords", "arn:aws:kinesis:us-east-1:1:stream/ECOM-x", {}) == "implicit"
    assert evaluate([star], "kinesis:GetRecords", "arn:aws:kinesis:us-east-1:1:stream/ecom-x", {}) == "implicit"
    # an explicit deny in any policy wins; NotAction / NotResource
    deny = {"Statement": [{"Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "*"}]}
    assert evaluate([star, deny], "kinesis:PutRecords", "arn:aws:kinesis:us-east-1:1:stream/ecom-x", {}) == "deny"
    assert evaluate([{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "NotResource": f"{bucket}/secret/*"}]}],
                    "s3:GetObject", f"{bucket}/secret/a", {}) == "implicit"
    # policy variables, IfExists, Null, negated operators on a missing key
    own = {"Statement": [{"Effect": "Allow", "Action": "redshift-data:DescribeStatement", "Resource": "*",
                          "Condition": {"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}}}]}
    me = {"aws:userid": ["AROA1:fn"]}
    assert evaluate([own], "redshift-data:DescribeStatement", "*",
                    {**me, "redshift-data:statement-owner-iam-userid": ["AROA1:fn"]}) == "allow"
    assert evaluate([own], "redshift-data:DescribeStatement", "*",
                    {**me, "redshift-data:statement-owner-iam-userid": ["AROA2:other"]}) == "implicit"
    assert evaluate([own], "redshift-data:DescribeStatement", "*", me) == "implicit"

    def allowed_with(condition: dict, context: dict) -> bool:
        policy = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": condition}]}
        return evaluate([policy], "s3:GetObject", "x", context) == "allow"

    assert allowed_with({"StringEqualsIfExists": {"aws:SourceAccount": "1"}}, {})
    assert not allowed_with({"StringEquals": {"aws:SourceAccount": "1"}}, {})
    assert allowed_with({"StringNotEquals": {"aws:SourceAccount": "1"}}, {})
    assert allowed_with({"Null": {"aws:SourceArn": "true"}}, {})
    assert not allowed_with({"Null": {"aws:SourceArn": "true"}}, {"aws:SourceArn": ["arn:aws:events:r:1:rule/x"]})
    assert allowed_with({"ArnLike": {"aws:SourceArn": "arn:aws:events:*:1:rule/ecom-*"}},
                        {"aws:SourceArn": ["arn:aws:events:us-east-1:1:rule/ecom-batch"]})
    assert not allowed_with({"ForAnyValue:StringLike": {"k": ["a*"]}}, {"k": ["b", "c"]})
    assert allowed_with({"ForAnyValue:StringLike": {"k": ["a*"]}}, {"k": ["b", "ab"]})
    assert not allowed_with({"ForAllValues:StringLike": {"k": ["a*"]}}, {"k": ["b", "ab"]})
    assert not allowed_with({"UnknownOperator": {"k": "v"}}, {"k": ["v"]})  # never more lenient
