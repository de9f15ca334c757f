"""Least privilege, checked against the code: each function's role allows exactly the AWS
actions its handler calls (plus what Lambda itself does with the role), on its own resources."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

from ecomlib import deploy, pipelines
from ecomlib.pipelines import batch
from ecomlib.pipelines import warehouse as warehouse_pipeline

LAMBDA_SRC = Path(deploy.LAMBDA_SRC)
FUNCTIONS = sorted(p.name for p in LAMBDA_SRC.iterdir() if (p / "handler.py").exists())
# In priority order: an operation name two services share (BatchExecuteStatement is also
# DynamoDB's PartiQL, which no handler uses) counts for the first.
SERVICES = {"s3": "s3", "kinesis": "kinesis", "redshift-data": "redshift-data", "dynamodb": "dynamodb",
            "sqs": "sqs", "lambda": "lambda", "events": "events", "firehose": "firehose"}
# Where an IAM action is not named after the API operation.
IAM_NAMES = {"s3:ListObjectsV2": ["s3:ListBucket"], "s3:CopyObject": ["s3:GetObject", "s3:PutObject"],
             "s3:DeleteObjects": ["s3:DeleteObject"]}
# What Lambda does with a function's role besides the code's own calls.
LOGS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
STREAM_MAPPING = {"kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
                  "kinesis:GetShardIterator", "kinesis:ListShards", "sqs:SendMessage"}
EXTRA = {
    "ingest_api": LOGS,
    "stream_to_s3": LOGS | STREAM_MAPPING,
    "stream_to_dynamodb": LOGS | STREAM_MAPPING,
    "invoice_api": LOGS,
    # The Data API signs in as DbUser with temporary credentials from GetClusterCredentials.
    "batch_loader": LOGS | {"redshift:GetClusterCredentials"},
}
# Actions IAM cannot restrict to a resource ("*" is the only Resource they take).
NO_RESOURCE_TYPES = {"redshift-data:DescribeStatement"}


def _operations() -> dict[str, str]:
    """snake_case operation name -> "service:Operation", for the services the handlers use."""
    session = botocore.session.get_session()
    found: dict[str, str] = {}
    for service, prefix in SERVICES.items():
        for name in session.get_service_model(service).operation_names:
            found.setdefault(xform_name(name), f"{prefix}:{name}")
    return found


def calls_of(function: str) -> set[str]:
    """The IAM actions of the boto3 calls in the handler and the shared modules it imports
    (directly or through another shared module)."""
    operations = _operations()
    sources = [LAMBDA_SRC / function / "handler.py"]
    for source in sources:  # the handler, then every shared module it imports, directly or not
        tree = ast.parse(source.read_text())
        sources += [path for path in (LAMBDA_SRC / "shared" / f"{node.module.split('.')[1]}.py"
                                      for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                                      and node.module and node.module.startswith("shared."))
                    if path not in sources]
    actions: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            if name == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                name = node.args[0].value
            if name in operations:
                action = operations[name]
                actions.update(IAM_NAMES.get(action, [action]))
    return actions


@pytest.fixture(scope="module")
def policies():
    pipelines.teardown_all()
    pipelines.deploy_all()
    batch.deploy()
    yield {function: deploy.role_policy(function) for function in FUNCTIONS}
    pipelines.teardown_all()


def allowed(policy: dict) -> set[str]:
    return {action for statement in policy["Statement"]
            for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])}


def test_the_handlers_call_what_we_expect():
    assert calls_of("ingest_api") == {"kinesis:PutRecords"}
    assert calls_of("stream_to_dynamodb") == {"dynamodb:BatchWriteItem"}
    assert calls_of("invoice_api") == {"dynamodb:Query"}
    assert calls_of("stream_to_s3") == {"s3:PutObject"}
    assert calls_of("batch_loader") == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket",
                                        "dynamodb:BatchWriteItem", "redshift-data:BatchExecuteStatement",
                                        "redshift-data:DescribeStatement"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_role_allows_exactly_what_its_code_calls(policies, function):
    granted = allowed(policies[function])
    needed = calls_of(function)
    assert needed <= granted, f"{function} calls {needed - granted} without permission: AccessDenied on AWS"
    assert granted <= needed | EXTRA[function], f"{function} may do {granted - needed - EXTRA[function]} it never does"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_wildcards_and_only_its_own_resources(policies, function):
    for statement in policies[function]["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        assert all("*" not in action for action in actions), f"{function}: wildcard action in {statement}"
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        if set(actions) <= NO_RESOURCE_TYPES:
            assert resources == ["*"] and statement.get("Condition"), f"{function}: {statement}"
            continue
        for resource in resources:
            own = any(mark in resource for mark in (":ecom-", "/ecom-", ":::ecom-"))
            assert resource != "*" and own, f"{function}: {resource} is not one of the course's own resources"


def test_service_roles_are_scoped_too():
    """Firehose's role and the role the cluster assumes for COPY."""
    bucket_arn = "arn:aws:s3:::ecom-example"
    secret = "arn:aws:secretsmanager:us-east-1:1:secret:redshift!ecom-warehouse-awsuser-AbCdEf"
    documents = [warehouse_pipeline.firehose_policy("arn:aws:kinesis:us-east-1:1:stream/ecom-invoices", bucket_arn,
                                                    secret),
                 warehouse_pipeline.cluster_role_policy(bucket_arn)]
    for document in documents:
        for statement in document["Statement"]:
            assert all("*" not in a for a in statement["Action"])
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert all("ecom-" in r for r in resources)


def test_copy_role_reads_only_the_batch_folder(policies):
    from ecomlib import aws

    document = aws.client("iam").get_role_policy(RoleName=batch.copy_role_name(), PolicyName="least-privilege")
    policy = document["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    assert allowed(policy) == {"s3:GetObject", "s3:ListBucket"}
    assert [s["Resource"].endswith("/batch/*") for s in policy["Statement"] if s["Action"] == ["s3:GetObject"]] == [True]
