"""Teardown by prefix: everything with the course's prefix goes, in order, and is checked."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from moto.server import ThreadedMotoServer

from ecomlib import aws, pipelines, teardown
from ecomlib.pipelines import batch

EVERY_KIND = {"rule", "event_source_mapping", "function", "log_group", "rest_api", "delivery_stream",
              "stream", "table", "queue", "bucket", "cluster", "security_group", "role"}


def build_everything() -> None:
    pipelines.deploy_all()
    batch.deploy()
    aws.client("lambda").invoke(FunctionName="ecom-batch-loader", Payload=b"{}")  # a log group too


def other_resources() -> None:
    """Things another project owns: a teardown must not touch them."""
    aws.client("s3").create_bucket(Bucket="ecommerce-reports")
    aws.client("dynamodb").create_table(
        TableName="ecomshop-orders", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])


def test_everything_with_the_prefix_goes_and_nothing_else():
    build_everything()
    other_resources()
    try:
        found = teardown.inventory()
        assert set(found) == EVERY_KIND, f"kinds found: {sorted(found)}"
        assert all(name.startswith("ecom-") or "(" in name or name.startswith("/aws/lambda/ecom-")
                   or kind == "event_source_mapping" for kind, names in found.items() for name in names)
        deleted = teardown.run()
        assert deleted == found
        assert teardown.inventory() == {}
        assert "ecommerce-reports" in [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]]
        assert "ecomshop-orders" in aws.client("dynamodb").list_tables()["TableNames"]
    finally:
        aws.client("s3").delete_bucket(Bucket="ecommerce-reports")
        aws.client("dynamodb").delete_table(TableName="ecomshop-orders")


def test_leftovers_are_reported(monkeypatch):
    aws.client("kinesis").create_stream(StreamName="ecom-stubborn", ShardCount=1)
    monkeypatch.setitem(teardown._DELETE, "stream", lambda name: None)  # a deletion that does not happen
    with pytest.raises(teardown.LeftoverError, match="stream: ecom-stubborn"):
        teardown.run()
    monkeypatch.undo()
    teardown.run()


def test_command_line_exits_non_zero_when_something_is_left():
    aws.endpoint_url()
    aws.client("sqs").create_queue(QueueName="ecom-cli-check")
    dry = subprocess.run([sys.executable, "-m", "ecomlib", "teardown", "--dry-run"], capture_output=True, text=True)
    assert dry.returncode == 0 and json.loads(dry.stdout)["found"] == {"queue": ["ecom-cli-check"]}
    done = subprocess.run([sys.executable, "-m", "ecomlib", "teardown"], capture_output=True, text=True)
    assert done.returncode == 0 and json.loads(done.stdout) == {"deleted": {"queue": ["ecom-cli-check"]}, "left": {}}
    assert "deleting queue ecom-cli-check" in done.stderr


def test_teardown_works_against_a_separately_started_endpoint(monkeypatch):
    """The endpoint target: a moto server standing in for an account (no gap-fillers)."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        monkeypatch.setenv("ECOM_TARGET", "endpoint")
        monkeypatch.setenv("ECOM_ENDPOINT_URL", f"http://{host}:{port}")
        aws.client("kinesis").create_stream(StreamName="ecom-invoices", ShardCount=1)
        aws.client("s3").create_bucket(Bucket="ecom-datalake-123456789012")
        aws.client("s3").put_object(Bucket="ecom-datalake-123456789012", Key="raw/x.jsonl", Body=b"{}")
        aws.client("sqs").create_queue(QueueName="ecom-dlq")
        aws.client("iam").create_role(RoleName="ecom-x-role", AssumeRolePolicyDocument="{}")
        aws.client("iam").put_role_policy(RoleName="ecom-x-role", PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                     "Resource": "arn:aws:s3:::ecom-datalake-123456789012/*"}]}))
        aws.client("events").put_rule(Name="ecom-batch-schedule", ScheduleExpression="rate(5 minutes)")
        found = teardown.run()
        assert set(found) == {"stream", "bucket", "queue", "role", "rule"}
        assert teardown.inventory() == {}
    finally:
        moto.stop()


def test_sqs_refuses_a_queue_name_deleted_less_than_60_seconds_ago():
    """SQS API reference (CreateQueue): QueueDeletedRecently; deploy.ensure_queue waits it out."""
    from ecomlib import deploy

    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="ecom-recently")["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDeletedRecently) as caught:
        sqs.create_queue(QueueName="ecom-recently")
    assert caught.value.response["Error"]["Message"] == (
        "You must wait 60 seconds after deleting a queue before you can create another with the same name.")
    sqs.create_queue(QueueName="ecom-other-name")  # only that name is refused
    arn = deploy.ensure_queue("ecom-recently")  # the course's path: waits, then creates
    assert arn.endswith(":ecom-recently")
    for name in ("ecom-recently", "ecom-other-name"):
        deploy.delete_queue(name)


def test_a_security_group_used_by_a_cluster_is_refused_until_the_cluster_is_gone():
    """EC2 DeleteSecurityGroup: DependencyViolation while a cluster (even a deleting one) uses it;
    the teardown waits for the cluster to be deleted first."""
    from botocore.exceptions import ClientError

    ec2, redshift = aws.client("ec2"), aws.client("redshift")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName="ecom-held-sg", Description="held", VpcId=vpc)["GroupId"]
    redshift.create_cluster(ClusterIdentifier="ecom-holder", NodeType="ra3.large", ClusterType="single-node",
                            MasterUsername="admin", MasterUserPassword="Passw0rd-long-enough",
                            VpcSecurityGroupIds=[group])
    with pytest.raises(ClientError) as caught:
        ec2.delete_security_group(GroupId=group)
    assert caught.value.response["Error"]["Code"] == "DependencyViolation"
    assert caught.value.response["Error"]["Message"] == f"resource {group} has a dependent object"
    with pytest.raises(RuntimeError, match="not being deleted"):
        teardown._DELETE["security_group"](f"ecom-held-sg ({group})")
    redshift.get_waiter("cluster_available").wait(ClusterIdentifier="ecom-holder",
                                                  WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    redshift.delete_cluster(ClusterIdentifier="ecom-holder", SkipFinalClusterSnapshot=True)
    teardown._DELETE["security_group"](f"ecom-held-sg ({group})")  # waits for the cluster, then deletes
    assert not ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["ecom-held-sg"]}])[
        "SecurityGroups"]
