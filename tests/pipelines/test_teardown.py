"""Teardown by prefix: everything tagged with (or exactly named for) the prefix goes, in
order, and is checked; another learner's resources, or anything merely named like them, stay."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from moto.server import ThreadedMotoServer

from ecomlib import aws, pipelines, registry, teardown
from ecomlib.pipelines import batch

EVERY_KIND = {"rule", "event_source_mapping", "function", "log_group", "rest_api", "delivery_stream",
              "stream", "table", "queue", "bucket", "cluster", "security_group", "role"}


def build_everything(prefix: str = "ecom") -> None:
    pipelines.deploy_all()
    batch.deploy()
    aws.client("lambda").invoke(FunctionName=f"{prefix}-batch-loader", Payload=b"{}")  # a log group too


def other_resources() -> None:
    """Things another project owns: a teardown must not touch them, even named ecom-..."""
    aws.client("s3").create_bucket(Bucket="ecommerce-reports")
    aws.client("sqs").create_queue(QueueName="ecom-notes")  # named like the course's, but neither tagged nor its name
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
        assert all(name.startswith("ecom-") or name.startswith("/aws/lambda/ecom-")
                   or kind == "event_source_mapping" for kind, names in found.items() for name in names)
        deleted = teardown.run()
        assert deleted == found
        assert teardown.inventory() == {}
        assert "ecommerce-reports" in [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]]
        assert "ecomshop-orders" in aws.client("dynamodb").list_tables()["TableNames"]
        assert aws.client("sqs").get_queue_url(QueueName="ecom-notes")
    finally:
        aws.client("sqs").delete_queue(QueueUrl=aws.client("sqs").get_queue_url(QueueName="ecom-notes")["QueueUrl"])
        aws.client("s3").delete_bucket(Bucket="ecommerce-reports")
        aws.client("dynamodb").delete_table(TableName="ecomshop-orders")


def test_leftovers_are_reported(monkeypatch):
    aws.client("kinesis").create_stream(StreamName="ecom-stubborn", ShardCount=1, Tags=registry.tags("ecom"))
    monkeypatch.setitem(teardown._DELETE, "stream", lambda name: None)  # a deletion that does not happen
    with pytest.raises(teardown.LeftoverError, match="stream: ecom-stubborn"):
        teardown.run()
    monkeypatch.undo()
    teardown.run()


def test_command_line_exits_non_zero_when_something_is_left():
    aws.endpoint_url()
    aws.client("sqs").create_queue(QueueName="ecom-cli-check", tags=registry.tags("ecom"))
    dry = subprocess.run([sys.executable, "-m", "ecomlib", "teardown", "--dry-run"], capture_output=True, text=True)
    assert dry.returncode == 0 and json.loads(dry.stdout)["found"] == {"queue": ["ecom-cli-check"]}
    done = subprocess.run([sys.executable, "-m", "ecomlib", "teardown"], capture_output=True, text=True)
    assert done.returncode == 0 and json.loads(done.stdout) == {"deleted": {"queue": ["ecom-cli-check"]}, "left": {}}
    assert "deleting queue ecom-cli-check" in done.stderr


def test_teardown_works_against_a_separately_started_endpoint(monkeypatch):
    """The endpoint target: a moto server standing in for an account (no gap-fillers, so a
    bucket or a stream loses its create-time tags there: the exact names find them)."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        monkeypatch.setenv("ECOM_TARGET", "endpoint")
        monkeypatch.setenv("ECOM_ENDPOINT_URL", f"http://{host}:{port}")
        aws.client("kinesis").create_stream(StreamName="ecom-invoices", ShardCount=1)
        aws.client("s3").create_bucket(Bucket="ecom-datalake-123456789012")
        aws.client("s3").put_object(Bucket="ecom-datalake-123456789012", Key="raw/x.jsonl", Body=b"{}")
        aws.client("sqs").create_queue(QueueName="ecom-raw-s3-dlq")
        aws.client("sqs").create_queue(QueueName="ecom-scratch")  # not a name of the course's
        aws.client("sqs").create_queue(QueueName="ecom-alice-raw-s3-dlq", tags=registry.tags("ecom-alice"))
        aws.client("iam").create_role(RoleName="ecom-firehose-role", AssumeRolePolicyDocument="{}")
        aws.client("iam").put_role_policy(RoleName="ecom-firehose-role", PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                     "Resource": "arn:aws:s3:::ecom-datalake-123456789012/*"}]}))
        aws.client("events").put_rule(Name="ecom-batch-schedule", ScheduleExpression="rate(5 minutes)")
        found = teardown.run()
        assert set(found) == {"stream", "bucket", "queue", "role", "rule"}
        assert teardown.inventory() == {}
        queues = [u.rsplit("/", 1)[-1] for u in aws.client("sqs").list_queues()["QueueUrls"]]
        assert sorted(queues) == ["ecom-alice-raw-s3-dlq", "ecom-scratch"]
        assert teardown.inventory("ecom-alice") == {"queue": ["ecom-alice-raw-s3-dlq"]}
    finally:
        moto.stop()


def test_two_learners_on_one_account_tear_down_only_their_own(monkeypatch):
    """``ecom`` and ``ecom-alice`` deploy everything side by side; each one's teardown
    leaves the other's resources complete (every kind, the same names, still tagged)."""
    built = {}
    try:
        for prefix in ("ecom-alice", "ecom"):
            monkeypatch.setenv("ECOM_PREFIX", prefix)
            build_everything(prefix)
            built[prefix] = teardown.inventory(prefix)
            assert set(built[prefix]) == EVERY_KIND, prefix
        for gone, kept in (("ecom", "ecom-alice"), ("ecom-alice", "ecom")):
            monkeypatch.setenv("ECOM_PREFIX", gone)
            assert teardown.run() == built[gone]
            assert teardown.inventory(gone) == {}
            after = teardown.inventory(kept)
            assert {k: v for k, v in after.items() if k != "event_source_mapping"} == \
                   {k: v for k, v in built[kept].items() if k != "event_source_mapping"}, f"{gone}'s teardown took {kept}'s"
            assert len(after["event_source_mapping"]) == len(built[kept]["event_source_mapping"])
            stream = f"{kept}-invoices"
            assert teardown.owner(teardown._tags(aws.client("kinesis").list_tags_for_stream(StreamName=stream)["Tags"])) == kept
            if kept == "ecom-alice":  # build ecom again, for the other direction
                build_everything("ecom")
                built["ecom"] = teardown.inventory("ecom")
    finally:
        for prefix in ("ecom", "ecom-alice"):
            teardown.run(prefix)


def test_every_resource_is_created_with_the_tags(monkeypatch):
    build_everything()
    try:
        found = teardown.inventory()
        untagged = []
        lam, s3, iam = aws.client("lambda"), aws.client("s3"), aws.client("iam")
        for name in found["function"]:
            arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
            if teardown.owner(lam.list_tags(Resource=arn)["Tags"]) != "ecom":
                untagged.append(name)
        for name in found["bucket"]:
            if teardown.owner(teardown._tags(s3.get_bucket_tagging(Bucket=name)["TagSet"])) != "ecom":
                untagged.append(name)
        for name in found["role"]:
            if teardown.owner(teardown._tags(iam.list_role_tags(RoleName=name)["Tags"])) != "ecom":
                untagged.append(name)
        assert untagged == []
        # The exact names are the fallback for untagged things only: every kind is found by its tags.
        monkeypatch.setattr(registry, "names", lambda prefix, account: {})
        assert teardown.inventory() == found
        monkeypatch.undo()
    finally:
        teardown.run()


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
