"""Remove everything this prefix's learner created, in dependency order, then check.

Each pipeline module has its own ``teardown()`` for what it built. This module is the
safety net the clean-up cells and ``python -m ecomlib teardown`` use: it *finds* every
resource of the prefix (``ECOM_PREFIX``, ``ecom`` by default), whoever created it,
deletes them users first (a schedule before its function, a mapping before its stream, a
cluster before the role it assumes), and lists again. Anything still there is reported,
and :func:`run` raises :class:`LeftoverError`.

A resource is the prefix's when it carries the course's tags with this prefix
(``course=ecom-data-engineering``, ``ecom:prefix=<prefix>``: ecomlib creates everything
with them), or, carrying no course tag, when its name is exactly one the course gives
with this prefix (``ecomlib.registry``: ``ecom-invoices``, ``ecom-datalake-<account>``,
...). A name that merely starts with the prefix is not enough: on a shared account,
``ecom`` and ``ecom-alice`` are two learners, and neither's teardown touches the other's
resources. A stream mapping is the prefix's when its function is.
"""

from __future__ import annotations

from typing import Callable

from botocore.exceptions import ClientError

from ecomlib import aws, registry
from ecomlib import deploy as dp
from ecomlib.config import settings

# Deletion order: each kind is deleted before the kinds it depends on.
KINDS = ["rule", "event_source_mapping", "function", "log_group", "rest_api", "delivery_stream",
         "stream", "table", "queue", "bucket", "cluster", "security_group", "role"]

# Each kind as ecomlib.registry names it (where its exact names come from).
REGISTRY_KIND = {
    "rule": "EventBridge rule", "function": "Lambda functions", "log_group": "CloudWatch log groups",
    "rest_api": "API Gateway REST API", "delivery_stream": "Kinesis Data Firehose",
    "stream": "Kinesis data stream", "table": "DynamoDB tables", "queue": "SQS queues", "bucket": "S3 buckets",
    "cluster": "Redshift cluster", "security_group": "EC2 security groups", "role": "IAM roles",
}


class LeftoverError(RuntimeError):
    """Resources of the prefix are still there after the teardown."""

    def __init__(self, left: dict[str, list[str]]) -> None:
        self.left = left
        listing = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in left.items())
        super().__init__(f"still there after the teardown: {listing}")


def _pages(client, operation: str, key: str, **kwargs) -> list:
    return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page.get(key, [])]


def _tags(given) -> dict[str, str]:
    """Tags as a dict, from either shape AWS answers with (a dict, or Key/Value pairs)."""
    if isinstance(given, dict):
        return dict(given)
    return {tag["Key"]: tag["Value"] for tag in given or []}


def _read_tags(call: Callable[[], object]) -> dict[str, str]:
    """The tags ``call`` answers; none for a resource that went away meanwhile, or a bucket
    without tags."""
    try:
        return _tags(call())
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if "NotFound" in code or code in ("NoSuchTagSet", "NoSuchEntity", "NoSuchBucket",
                                          "AWS.SimpleQueueService.NonExistentQueue"):
            return {}
        raise


def owner(tags: dict[str, str]) -> str | None:
    """The prefix a resource was created with, from its tags (None: not the course's)."""
    return tags.get(registry.PREFIX_TAG) if tags.get(registry.COURSE_TAG) == registry.COURSE else None


def inventory(prefix: str | None = None) -> dict[str, list[str]]:
    """Every resource of ``prefix`` (tagged with it, or untagged with one of its exact
    names), by kind (only kinds with some)."""
    prefix = prefix or settings().prefix

    def mine(kind: str, name: str, tags: dict[str, str]) -> bool:
        if tags.get(registry.COURSE_TAG) == registry.COURSE:
            return owner(tags) == prefix
        return name in exact.get(REGISTRY_KIND[kind], ())

    lam, logs, firehose, kinesis = (aws.client(s) for s in ("lambda", "logs", "firehose", "kinesis"))
    ddb, sqs, s3, iam, events = (aws.client(s) for s in ("dynamodb", "sqs", "s3", "iam", "events"))
    exact = registry.names(prefix, aws.account_id())  # after the first client: the preflight first
    functions = {f["FunctionName"]: f["FunctionArn"] for f in _pages(lam, "list_functions", "Functions")}
    functions = [n for n, arn in functions.items()
                 if mine("function", n, _read_tags(lambda arn=arn: lam.list_tags(Resource=arn)["Tags"]))]
    queues = _pages(sqs, "list_queues", "QueueUrls")
    found = {
        "rule": [r["Name"] for r in _pages(events, "list_rules", "Rules") if mine("rule", r["Name"], _read_tags(
            lambda r=r: events.list_tags_for_resource(ResourceARN=r["Arn"])["Tags"]))],
        "event_source_mapping": [m["UUID"] for m in _pages(lam, "list_event_source_mappings", "EventSourceMappings")
                                 if m["FunctionArn"].split(":")[6] in functions],
        "function": functions,
        "log_group": [g["logGroupName"] for g in _pages(logs, "describe_log_groups", "logGroups",
                                                        logGroupNamePrefix="/aws/lambda/")
                      if mine("log_group", g["logGroupName"], _read_tags(lambda g=g: logs.list_tags_for_resource(
                          resourceArn=g["arn"].removesuffix(":*"))["tags"]))],
        "rest_api": [f'{a["name"]} ({a["id"]})' for a in _pages(aws.client("apigateway"), "get_rest_apis", "items")
                     if mine("rest_api", a["name"], _tags(a.get("tags")))],
        "delivery_stream": [n for n in firehose.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]
                            if mine("delivery_stream", n, _read_tags(lambda n=n: firehose.list_tags_for_delivery_stream(
                                DeliveryStreamName=n)["Tags"]))],
        "stream": [n for n in _pages(kinesis, "list_streams", "StreamNames") if mine("stream", n, _read_tags(
            lambda n=n: kinesis.list_tags_for_stream(StreamName=n)["Tags"]))],
        "table": [n for n in _pages(ddb, "list_tables", "TableNames") if mine("table", n, _read_tags(
            lambda n=n: ddb.list_tags_of_resource(ResourceArn=ddb.describe_table(TableName=n)["Table"]["TableArn"])[
                "Tags"]))],
        "queue": [u.rsplit("/", 1)[-1] for u in queues if mine("queue", u.rsplit("/", 1)[-1], _read_tags(
            lambda u=u: sqs.list_queue_tags(QueueUrl=u).get("Tags", {})))],
        "bucket": [b["Name"] for b in s3.list_buckets().get("Buckets", []) if mine("bucket", b["Name"], _read_tags(
            lambda b=b: s3.get_bucket_tagging(Bucket=b["Name"])["TagSet"]))],
        "cluster": [c["ClusterIdentifier"] for c in _pages(aws.client("redshift"), "describe_clusters", "Clusters")
                    if mine("cluster", c["ClusterIdentifier"], _tags(c.get("Tags")))
                    and c.get("ClusterStatus") != "deleting"],
        "security_group": [f'{g["GroupName"]} ({g["GroupId"]})' for g in _pages(
            aws.client("ec2"), "describe_security_groups", "SecurityGroups")
            if mine("security_group", g["GroupName"], _tags(g.get("Tags")))],
        "role": [r["RoleName"] for r in _pages(iam, "list_roles", "Roles") if mine("role", r["RoleName"], _read_tags(
            lambda r=r: iam.list_role_tags(RoleName=r["RoleName"])["Tags"]))],
    }
    return {kind: sorted(names) for kind, names in found.items() if names}


def run(prefix: str | None = None, log: Callable[[str], None] | None = None) -> dict[str, list[str]]:
    """Delete every resource of :func:`inventory`, in dependency order; returns what was
    deleted. Raises :class:`LeftoverError` if anything is left afterwards."""
    prefix = prefix or settings().prefix
    found = inventory(prefix)
    for kind in KINDS:
        for name in found.get(kind, []):
            if log:
                log(f"deleting {kind} {name}")
            _DELETE[kind](name)
    left = inventory(prefix)
    if left:
        raise LeftoverError(left)
    return found


# ---- one function per kind ------------------------------------------------------------------


def _ignore_missing(call: Callable[[], object]) -> None:
    try:
        call()
    except ClientError as error:
        if "NotFound" not in error.response["Error"]["Code"]:  # ...NotFound, NotFoundFault, ...
            raise


def _rule(name: str) -> None:
    events = aws.client("events")
    targets = [t["Id"] for t in events.list_targets_by_rule(Rule=name).get("Targets", [])]
    if targets:
        events.remove_targets(Rule=name, Ids=targets)
    _ignore_missing(lambda: events.delete_rule(Name=name))


def _mapping(uuid: str) -> None:
    dp.delete_mapping(uuid)  # waits while it is Creating/Updating, then until it is gone


def _security_group(label: str) -> None:
    group_id = label.rsplit("(", 1)[1].rstrip(")")
    dp.wait_for_clusters_using(group_id)  # a deleting cluster still holds it (DependencyViolation)
    _ignore_missing(lambda: aws.client("ec2").delete_security_group(GroupId=group_id))


def _rest_api(label: str) -> None:
    api_id = label.rsplit("(", 1)[1].rstrip(")")
    _ignore_missing(lambda: aws.client("apigateway").delete_rest_api(restApiId=api_id))


def _stream(name: str) -> None:
    kinesis = aws.client("kinesis")
    _ignore_missing(lambda: kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True))
    _ignore_missing(lambda: kinesis.get_waiter("stream_not_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 150}))


def _cluster(name: str) -> None:
    redshift = aws.client("redshift")
    _ignore_missing(lambda: redshift.delete_cluster(ClusterIdentifier=name, SkipFinalClusterSnapshot=True))
    _ignore_missing(lambda: redshift.get_waiter("cluster_deleted").wait(
        ClusterIdentifier=name, WaiterConfig={"Delay": 15, "MaxAttempts": 80}))


_DELETE: dict[str, Callable[[str], None]] = {
    "rule": _rule,
    "event_source_mapping": _mapping,
    "function": lambda name: _ignore_missing(lambda: aws.client("lambda").delete_function(FunctionName=name)),
    "log_group": lambda name: _ignore_missing(lambda: aws.client("logs").delete_log_group(logGroupName=name)),
    "rest_api": _rest_api,
    "delivery_stream": dp.delete_delivery_stream,  # asynchronous on AWS: waits until it is gone
    "stream": _stream,
    "table": dp.delete_table,
    "queue": dp.delete_queue,
    "bucket": dp.empty_and_delete_bucket,
    "cluster": _cluster,
    "security_group": _security_group,
    "role": dp.delete_role,
}
