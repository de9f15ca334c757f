"""Remove everything that carries the course's prefix, in dependency order, then check.

Each pipeline module has its own ``teardown()`` for what it built. This module is the
safety net the clean-up cells and ``python -m ecomlib teardown`` use: it *finds* every
resource whose name starts with ``<prefix>-`` (``ECOM_PREFIX``, ``ecom`` by default),
whoever created it, deletes them users first (a schedule before its function, a mapping
before its stream, a cluster before the role it assumes), and lists again. Anything
still there is reported, and :func:`run` raises :class:`LeftoverError`.

Choose a prefix that nothing else in your account uses: everything that starts with it
is deleted. On a real account, look at :func:`inventory` first.
"""

from __future__ import annotations

from typing import Callable

from botocore.exceptions import ClientError

from ecomlib import aws
from ecomlib import deploy as dp
from ecomlib.config import settings

# Deletion order: each kind is deleted before the kinds it depends on.
KINDS = ["rule", "event_source_mapping", "function", "log_group", "rest_api", "delivery_stream",
         "stream", "table", "queue", "bucket", "cluster", "security_group", "role"]


class LeftoverError(RuntimeError):
    """Resources with the course's prefix are still there after the teardown."""

    def __init__(self, left: dict[str, list[str]]) -> None:
        self.left = left
        listing = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in left.items())
        super().__init__(f"still there after the teardown: {listing}")


def _mine(name: str, prefix: str) -> bool:
    return name.startswith(prefix + "-")


def _pages(client, operation: str, key: str, **kwargs) -> list:
    return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page.get(key, [])]


def inventory(prefix: str | None = None) -> dict[str, list[str]]:
    """Every resource whose name starts with ``<prefix>-``, by kind (only kinds with some)."""
    prefix = prefix or settings().prefix
    lam = aws.client("lambda")
    functions = [f["FunctionName"] for f in _pages(lam, "list_functions", "Functions") if _mine(f["FunctionName"], prefix)]
    found = {
        "rule": [r["Name"] for r in _pages(aws.client("events"), "list_rules", "Rules", NamePrefix=prefix + "-")],
        "event_source_mapping": [m["UUID"] for m in _pages(lam, "list_event_source_mappings", "EventSourceMappings")
                                 if m["FunctionArn"].split(":")[6] in functions],
        "function": functions,
        "log_group": [g["logGroupName"] for g in _pages(aws.client("logs"), "describe_log_groups", "logGroups",
                                                        logGroupNamePrefix=f"/aws/lambda/{prefix}-")],
        "rest_api": [f'{a["name"]} ({a["id"]})' for a in _pages(aws.client("apigateway"), "get_rest_apis", "items")
                     if _mine(a["name"], prefix)],
        "delivery_stream": [n for n in aws.client("firehose").list_delivery_streams(Limit=10000)["DeliveryStreamNames"]
                            if _mine(n, prefix)],
        "stream": [n for n in _pages(aws.client("kinesis"), "list_streams", "StreamNames") if _mine(n, prefix)],
        "table": [n for n in _pages(aws.client("dynamodb"), "list_tables", "TableNames") if _mine(n, prefix)],
        "queue": [u.rsplit("/", 1)[-1] for u in aws.client("sqs").list_queues(QueueNamePrefix=prefix + "-").get("QueueUrls", [])],
        "bucket": [b["Name"] for b in aws.client("s3").list_buckets().get("Buckets", []) if _mine(b["Name"], prefix)],
        "cluster": [c["ClusterIdentifier"] for c in _pages(aws.client("redshift"), "describe_clusters", "Clusters")
                    if _mine(c["ClusterIdentifier"], prefix) and c.get("ClusterStatus") != "deleting"],
        "security_group": [f'{g["GroupName"]} ({g["GroupId"]})' for g in _pages(
            aws.client("ec2"), "describe_security_groups", "SecurityGroups") if _mine(g["GroupName"], prefix)],
        "role": [r["RoleName"] for r in _pages(aws.client("iam"), "list_roles", "Roles") if _mine(r["RoleName"], prefix)],
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
