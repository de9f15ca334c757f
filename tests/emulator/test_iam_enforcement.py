"""Opt-in IAM on the embedded AWS: a function may do only what its role allows."""

from __future__ import annotations

import json

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from ecomlib import aws, client, data, deploy, pipelines, security
from ecomlib.pipelines import ingest, raw_s3

pytestmark = pytest.mark.slow  # deploys every pipeline first


@pytest.fixture(scope="module")
def url():
    pipelines.teardown_all()
    url = ingest.deploy()
    raw_s3.deploy()
    yield url
    security.enforce_iam(False)
    pipelines.teardown_all()


@pytest.fixture
def enforced():
    assert security.enforce_iam(True) is True
    yield
    assert security.enforce_iam(False) is False


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


def test_a_missing_permission_fails_the_call_as_on_aws(url, enforced):
    assert requests.post(url, json=rows(5), timeout=30).status_code == 200
    set_actions("ingest_api", "PutToTheInvoiceStream", ["kinesis:DescribeStream"])  # PutRecords removed
    try:
        answer = requests.post(url, json=rows(5), timeout=30)
        # Not retryable: the function is misconfigured. The answer says so, no stack trace.
        assert answer.status_code == 500
        assert "AccessDeniedException" in answer.json()["message"], answer.text
    finally:
        set_actions("ingest_api", "PutToTheInvoiceStream", ["kinesis:PutRecords"])
    assert requests.post(url, json=rows(5), timeout=30).status_code == 200


def test_without_enforcement_nothing_is_checked(url):
    set_actions("ingest_api", "PutToTheInvoiceStream", ["kinesis:DescribeStream"])
    try:
        assert requests.post(url, json=rows(5), timeout=30).status_code == 200
    finally:
        set_actions("ingest_api", "PutToTheInvoiceStream", ["kinesis:PutRecords"])


def test_in_s3_the_resource_counts_too(url, enforced):
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


def test_the_course_own_calls_are_the_account_owner(url, enforced):
    assert raw_s3.bucket_name() in [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]]
    assert ingest.stream_name() in aws.client("kinesis").list_streams()["StreamNames"]
