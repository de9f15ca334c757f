"""Every pipeline of the course, declared once.

A :class:`Pipeline` says what the pipeline is made of and how the rest of ecomlib treats
it: its Lambda functions (code folder in ``lambda_src/``, settings, memory, timeout, the
statements of its role), its stream mappings, the resources it creates, what it stores
and how its stored row ids are counted, its dead-letter queue, what it is billed for,
and its place in the architecture diagram. Its module ``ecomlib/pipelines/<name>.py``
builds it (``deploy()``, ``teardown()``) from these facts.

Deploy and teardown (``ecomlib.pipelines``), the demo, ``reconcile``, ``bench``, ``cost``,
``preflight``, ``infra``, ``viz`` and the template comparison in the tests all loop over
:data:`PIPELINES`; ``tests/unit/test_registry.py`` fails when a declaration is incomplete.

Names are patterns: ``{p}`` is the prefix (``ECOM_PREFIX``), ``{account}`` the account id.
This module is pure data (it imports no other ecomlib module), so that any layer may read it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

# What deploy.ensure_role gives every function besides its own statements.
LOG_STATEMENT = "WriteOwnLogs"

# The Lambda runtime of every function (deploy.RUNTIME, infra/template.yaml). python3.13:
# AWS deprecates it on 2029-06-30 and blocks creating functions with it from 2029-07-31
# (Lambda developer guide, "Lambda runtimes"; cfn-lint's runtime lifecycle table), where
# python3.11 is deprecated on 2027-06-30. The handlers use only the standard library and
# boto3; the embedded AWS runs them on the local Python and says so when it differs.
LAMBDA_RUNTIME = "python3.13"

# API Gateway's integration timeout for REST APIs: 29 s (API Gateway developer guide,
# "Amazon API Gateway quotas"); after it the client gets 504 whatever the function does.
# A function behind the API times out sooner, so it always answers (tests/test_registry.py).
API_GATEWAY_TIMEOUT_S = 29


@dataclass(frozen=True)
class Function:
    """A Lambda function: ``lambda_src/<folder>/handler.py``, deployed as ``{p}-<folder with dashes>``.

    ``settings``: the environment variables it reads; ``policy``: the Sids of its role's
    statements (besides ``WriteOwnLogs``); ``ms_per_invocation`` + ``ms_per_item`` x items:
    its assumed duration (a cost input, see ``ecomlib.cost``).
    """

    folder: str
    memory_mb: int
    timeout_s: int
    settings: tuple[str, ...]
    policy: tuple[str, ...]
    ms_per_invocation: float
    ms_per_item: float

    @property
    def name(self) -> str:
        """The deployed name's suffix: ``stream_to_s3`` -> ``stream-to-s3``."""
        return self.folder.replace("_", "-")


@dataclass(frozen=True)
class StreamMapping:
    """A Kinesis event source mapping: the stream feeds ``function`` in batches."""

    function: str
    batch_size: int
    window_seconds: int
    bisect: bool


@dataclass(frozen=True)
class Resource:
    """Something a pipeline creates besides its functions: ``kind`` as the preflight lists
    it (``"S3 buckets"``), the name pattern, and a note shown beside the name."""

    kind: str
    name: str
    note: str = ""


@dataclass(frozen=True)
class Node:
    """The pipeline in the architecture diagram (``ecomlib.viz``): its legend title,
    colour, arrows between the diagram's boxes, and where its number badge sits on the
    first arrow (0 tail, 1 head)."""

    title: str
    colour: str
    edges: tuple[tuple[str, str, str], ...]
    badge_at: float = 0.5


@dataclass(frozen=True)
class Pipeline:
    """One pipeline, numbered in the order the notebooks build it."""

    name: str  # its module: ecomlib/pipelines/<name>.py
    number: int
    notebook: str  # notebooks/<notebook>
    functions: tuple[Function, ...]
    resources: tuple[Resource, ...]
    bills: tuple[str, ...]  # the services it is billed for (ecomlib.cost.SERVICES)
    diagram: Node
    mappings: tuple[StreamMapping, ...] = ()
    stores: Resource | None = None  # where it keeps the rows (None: it stores nothing of its own)
    count: str = ""  # function of its module: {RowId: times stored} (reconcile)
    dead_letter_queue: str = ""  # name pattern ("": it has none)
    with_the_others: bool = True  # deployed by pipelines.deploy_all() (batch: by its notebook)
    fed_by: str = "stream"  # "client" (the API), "stream" (Kinesis) or "files" (batch)

    @property
    def module(self) -> ModuleType:
        """``ecomlib.pipelines.<name>``: its ``deploy()`` and ``teardown()``."""
        return importlib.import_module(f"ecomlib.pipelines.{self.name}")

    def function(self, folder: str) -> Function:
        [found] = [f for f in self.functions if f.folder == folder]
        return found

    def mapping(self, function: str) -> StreamMapping:
        [found] = [m for m in self.mappings if m.function == function]
        return found


def name(pattern: str, prefix: str, account: str = "<account>") -> str:
    """A name pattern filled in: ``name("{p}-api", "ecom")`` -> ``ecom-api``."""
    return pattern.format(p=prefix, account=account)


# ---- whose is it: the tags every resource is created with ----------------------------------

COURSE = "ecom-data-engineering"
COURSE_TAG = "course"  # = COURSE on everything the course creates
PREFIX_TAG = "ecom:prefix"  # = the prefix it was created with (ECOM_PREFIX)


def tags(prefix: str) -> dict[str, str]:
    """The tags of everything created with ``prefix``: teardown deletes what carries them."""
    return {COURSE_TAG: COURSE, PREFIX_TAG: prefix}


def tag_list(prefix: str) -> list[dict[str, str]]:
    """:func:`tags` as most AWS APIs take them: ``[{"Key": ..., "Value": ...}]``."""
    return [{"Key": key, "Value": value} for key, value in tags(prefix).items()]


# Created besides what the pipelines list (not in the preflight: free, or notebook 09's stack).
SUPPORT: tuple[Resource, ...] = (
    Resource("EC2 security groups", "{p}-warehouse-sg", note="the warehouse's"),
    Resource("CloudFormation stacks", "{p}-stack", note="notebook 09"),
    Resource("S3 buckets", "{p}-artifacts-{account}", note="the stack's code"),
)


PIPELINES: tuple[Pipeline, ...] = (
    Pipeline(
        name="ingest", number=1, notebook="02_connect_and_buffer.ipynb", fed_by="client",
        functions=(Function("ingest_api", memory_mb=256, timeout_s=20, settings=("STREAM_NAME",),
                            policy=("PutToTheInvoiceStream",),
                            ms_per_invocation=40, ms_per_item=0.2),),  # + one PutRecords per request
        resources=(Resource("Kinesis data stream", "{p}-invoices"), Resource("API Gateway REST API", "{p}-api")),
        bills=("Kinesis Data Streams", "API Gateway", "Lambda", "CloudWatch Logs"),
        diagram=Node("Ingestion", "#1f77b4", (
            ("client", "api_post", ""), ("api_post", "lambda_ingest", ""), ("lambda_ingest", "kinesis", ""))),
    ),
    Pipeline(
        name="raw_s3", number=2, notebook="03_stream_to_raw_storage.ipynb",
        functions=(Function("stream_to_s3", memory_mb=256, timeout_s=60, settings=("BUCKET", "PREFIX"),
                            policy=("ReadTheInvoiceStream", "WriteRawObjects", "SendFailuresToTheDeadLetterQueue"),
                            ms_per_invocation=60, ms_per_item=0.05),),  # one S3 PUT per batch
        mappings=(StreamMapping("stream_to_s3", batch_size=500, window_seconds=5, bisect=False),),
        resources=(Resource("S3 buckets", "{p}-datalake-{account}"), Resource("SQS queues", "{p}-raw-s3-dlq")),
        stores=Resource("S3 buckets", "{p}-datalake-{account}"), count="row_ids",
        dead_letter_queue="{p}-raw-s3-dlq",
        bills=("S3", "Lambda", "CloudWatch Logs"),
        diagram=Node("Stream to raw S3", "#2ca02c", (("kinesis", "lambda_raw", ""), ("lambda_raw", "s3_raw", ""))),
    ),
    Pipeline(
        name="dynamodb", number=3, notebook="04_stream_to_dynamodb.ipynb",
        functions=(Function("stream_to_dynamodb", memory_mb=512, timeout_s=120,
                            settings=("INVOICES_TABLE", "CUSTOMERS_TABLE"),
                            policy=("ReadTheInvoiceStream", "WriteTheServingTables", "SendFailuresToTheDeadLetterQueue"),
                            ms_per_invocation=20, ms_per_item=4.0),),  # two items per record
        mappings=(StreamMapping("stream_to_dynamodb", batch_size=100, window_seconds=1, bisect=True),),
        resources=(Resource("DynamoDB tables", "{p}-invoices-table"), Resource("DynamoDB tables", "{p}-customers-table"),
                   Resource("SQS queues", "{p}-dynamodb-dlq")),
        stores=Resource("DynamoDB tables", "{p}-invoices-table"), count="line_ids",
        dead_letter_queue="{p}-dynamodb-dlq",
        bills=("DynamoDB", "Lambda", "CloudWatch Logs"),
        diagram=Node("Stream to DynamoDB", "#9467bd", (
            ("kinesis", "lambda_tables", ""), ("lambda_tables", "dynamodb", ""))),
    ),
    Pipeline(
        name="invoice_api", number=4, notebook="05_visualization_api.ipynb", fed_by="client",
        functions=(Function("invoice_api", memory_mb=256, timeout_s=10, settings=("INVOICES_TABLE", "CUSTOMERS_TABLE"),
                            policy=("QueryTheServingTables",), ms_per_invocation=15, ms_per_item=0.0),),  # one Query
        resources=(),  # its routes are on the ingestion pipeline's API
        bills=("API Gateway", "DynamoDB", "Lambda", "CloudWatch Logs"),
        diagram=Node("Visualization API", "#d62728", (("api_get", "lambda_read", ""), ("lambda_read", "dynamodb", ""))),
    ),
    Pipeline(
        name="warehouse", number=5, notebook="06_warehouse.ipynb",
        functions=(),  # Firehose reads the stream and runs the COPY
        resources=(Resource("IAM roles", "{p}-firehose-role"), Resource("IAM roles", "{p}-warehouse-role"),
                   Resource("S3 buckets", "{p}-firehose-{account}"),
                   Resource("Kinesis Data Firehose", "{p}-to-warehouse"),
                   Resource("Redshift cluster", "{p}-warehouse", note="one ra3.large node")),
        stores=Resource("Redshift cluster", "{p}-warehouse"), count="row_ids",
        # Firehose has no dead-letter queue: a COPY it gives up on leaves its manifest under
        # errors/ in its bucket, and those rows show up in reconcile as missing.
        bills=("Firehose", "S3", "Redshift"),
        diagram=Node("Warehouse", "#ff7f0e", (
            ("kinesis", "firehose", ""), ("firehose", "s3_stage", "buffered delivery"),
            ("s3_stage", "redshift", "COPY"), ("redshift", "dashboards", "")), badge_at=0.25),
    ),
    Pipeline(
        name="batch", number=6, notebook="08_batch_vs_stream.ipynb", fed_by="files", with_the_others=False,
        functions=(Function("batch_loader", memory_mb=1024, timeout_s=300, settings=(
            "BUCKET", "PREFIX", "INVOICES_TABLE", "CUSTOMERS_TABLE", "CLUSTER_ID", "DATABASE", "DB_USER",
            "WAREHOUSE_TABLE", "JSONPATHS", "COPY_ROLE_ARN", "CHUNK_BYTES"),
            policy=("ListTheBatchFolder", "ReadAndMoveBatchFiles", "WriteTheServingTables", "RunSqlOnTheWarehouse",
                    "FollowItsOwnStatements", "SignInAsTheWarehouseUser"),
            ms_per_invocation=2000, ms_per_item=0.05),),  # a run: list, stage, COPY, merge; per row
        resources=(Resource("IAM roles", "{p}-warehouse-copy-role"), Resource("EventBridge rule", "{p}-batch-schedule")),
        # It stores into the serving tables and the warehouse (their pipelines count them).
        bills=("S3", "DynamoDB", "Redshift", "Lambda", "CloudWatch Logs"),
        diagram=Node("Batch", "#8c564b", (
            ("eventbridge", "lambda_batch", "on a schedule"), ("lambda_batch", "s3_batch", ""),
            ("s3_batch", "dynamodb", ""), ("s3_batch", "redshift", "")), badge_at=0.2),
    ),
)


def get(pipeline: str) -> Pipeline:
    """The pipeline named ``pipeline`` (its module's name)."""
    for declared in PIPELINES:
        if declared.name == pipeline:
            return declared
    raise KeyError(f"no pipeline {pipeline!r}; declared: {[p.name for p in PIPELINES]}")


def functions() -> list[Function]:
    """Every function of every pipeline, in pipeline order."""
    return [f for p in PIPELINES for f in p.functions]


def function(folder: str) -> Function:
    """The declaration of the function in ``lambda_src/<folder>``."""
    [found] = [f for f in functions() if f.folder == folder]
    return found


def mappings() -> list[StreamMapping]:
    """Every stream mapping, in pipeline order."""
    return [m for p in PIPELINES for m in p.mappings]


def stores() -> tuple[str, ...]:
    """The pipelines that store the stream's rows (reconcile counts them): raw_s3, dynamodb, warehouse."""
    return tuple(p.name for p in PIPELINES if p.count)


def stream_readers() -> int:
    """How many consumers read every record of the stream (mappings and delivery streams)."""
    return len(mappings()) + sum(1 for p in PIPELINES for r in p.resources if r.kind == "Kinesis Data Firehose")


def resources() -> list[Resource]:
    """Every named thing the course creates, as a pattern: each pipeline's functions (with
    their roles and log groups) and resources, and :data:`SUPPORT`; no repeats."""
    found: list[Resource] = []
    for pipeline in PIPELINES:
        for f in pipeline.functions:
            found += [Resource("Lambda functions", f"{{p}}-{f.name}"), Resource("IAM roles", f"{{p}}-{f.name}-role"),
                      Resource("CloudWatch log groups", f"/aws/lambda/{{p}}-{f.name}")]
        found += [Resource(r.kind, r.name) for r in pipeline.resources]
    found += [Resource(r.kind, r.name) for r in SUPPORT]
    return list(dict.fromkeys(found))


def names(prefix: str, account: str) -> dict[str, set[str]]:
    """The exact names :func:`resources` get with this prefix and account, by kind."""
    found: dict[str, set[str]] = {}
    for resource in resources():
        found.setdefault(resource.kind, set()).add(name(resource.name, prefix, account))
    return found
