"""Pipeline 6, batch: a scheduled rule -> Lambda (batch_loader) -> bulk files in S3 ->
DynamoDB and the warehouse.

Files dropped under ``s3://<data lake>/batch/incoming/`` are loaded by the
``batch_loader`` function each time an EventBridge rule fires it (``rate(...)`` or
``cron(...)``): validated like the API's rows, written to the same Invoices and
Customers tables as the stream path, merged into ``firehose_transactions``, and moved
to ``batch/processed/`` (or ``batch/failed/`` with a report of the bad rows). See
``lambda_src/batch_loader/handler.py`` for how a file is loaded whole or not at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ecomlib import aws, data, deploy as dp, registry, schedule
from ecomlib import redshift as wh
from ecomlib.config import resource_name, settings
from ecomlib.pipelines import dynamodb, raw_s3
from ecomlib.pipelines import warehouse as warehouse_pipeline

PIPELINE = registry.get("batch")
FUNCTION = "batch_loader"
PREFIX = "batch/"
INCOMING = PREFIX + "incoming/"
DEFAULT_SCHEDULE = "rate(5 minutes)"
TIMEOUT_SECONDS = PIPELINE.function(FUNCTION).timeout_s  # a run stops before this and the next one carries on


def bucket_name() -> str:
    """The data lake bucket (shared with the raw zone): batch files live under batch/."""
    return raw_s3.bucket_name()


def rule_name() -> str:
    return resource_name("batch-schedule")


def copy_role_name() -> str:
    return resource_name("warehouse-copy", "role")


def jsonpaths_url() -> str:
    return f"s3://{bucket_name()}/{PREFIX}config/jsonpaths.json"


def policy(bucket_arn: str, table_arns: list[str]) -> list[dict]:
    """Read and move files under batch/, write the two tables, run SQL on the one cluster."""
    region, account = aws.region(), aws.account_id()
    cluster = wh.cluster_id()
    return [
        {"Sid": "ListTheBatchFolder", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": bucket_arn,
         "Condition": {"StringLike": {"s3:prefix": [f"{PREFIX}*"]}}},
        {"Sid": "ReadAndMoveBatchFiles", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": f"{bucket_arn}/{PREFIX}*"},
        {"Sid": "WriteTheServingTables", "Effect": "Allow", "Action": ["dynamodb:BatchWriteItem"],
         "Resource": table_arns},
        {"Sid": "RunSqlOnTheWarehouse", "Effect": "Allow", "Action": ["redshift-data:BatchExecuteStatement"],
         "Resource": f"arn:aws:redshift:{region}:{account}:cluster:{cluster}"},
        # DescribeStatement names no resource type in IAM: it is limited to the caller's
        # own statements by the condition AWS documents for the Data API.
        {"Sid": "FollowItsOwnStatements", "Effect": "Allow", "Action": ["redshift-data:DescribeStatement"],
         "Resource": "*", "Condition": {"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}}},
        {"Sid": "SignInAsTheWarehouseUser", "Effect": "Allow", "Action": ["redshift:GetClusterCredentials"],
         "Resource": [f"arn:aws:redshift:{region}:{account}:dbuser:{cluster}/{wh.DB_USER}",
                      f"arn:aws:redshift:{region}:{account}:dbname:{cluster}/{wh.DATABASE}"]},
    ]


def ensure_copy_role(bucket_arn: str) -> str:
    """The role the cluster assumes to read batch files in COPY (``IAM_ROLE '<arn>'``)."""
    iam = aws.client("iam")
    role = copy_role_name()
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "redshift.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    read = {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadStagedBatchRows", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": f"{bucket_arn}/{PREFIX}*"},
        {"Sid": "ListStagedBatchRows", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": bucket_arn},
    ]}
    try:
        arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust),
                              Tags=dp.tag_list())["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="least-privilege", PolicyDocument=json.dumps(read))
    return arn


def attach_copy_role(role_arn: str) -> None:
    """Let the cluster assume the COPY role (if it may not already)."""
    redshift = aws.client("redshift")
    cluster = redshift.describe_clusters(ClusterIdentifier=wh.cluster_id())["Clusters"][0]
    if role_arn not in [role["IamRoleArn"] for role in cluster.get("IamRoles", [])]:
        redshift.modify_cluster_iam_roles(ClusterIdentifier=wh.cluster_id(), AddIamRoles=[role_arn])


def ensure_schedule(function_arn: str, expression: str = DEFAULT_SCHEDULE, enabled: bool = True) -> str:
    """The EventBridge rule that runs the loader, its target, and Lambda's permission; returns the rule's ARN."""
    schedule.parse(expression)  # a clear message here rather than AWS's ValidationException
    events, lam = aws.client("events"), aws.client("lambda")
    rule_arn = events.put_rule(Name=rule_name(), ScheduleExpression=expression,
                               State="ENABLED" if enabled else "DISABLED",
                               Description="Load the bulk files waiting in batch/incoming/", Tags=dp.tag_list())["RuleArn"]
    events.put_targets(Rule=rule_name(), Targets=[{"Id": "batch-loader", "Arn": function_arn}])
    try:  # without this statement EventBridge may not invoke the function
        lam.add_permission(FunctionName=dp.function_name(FUNCTION), StatementId="run-on-schedule",
                           Action="lambda:InvokeFunction", Principal="events.amazonaws.com", SourceArn=rule_arn)
    except lam.exceptions.ResourceConflictException:
        pass  # already there
    return rule_arn


def deploy(expression: str = DEFAULT_SCHEDULE, chunk_bytes: int = 8 * 1024 * 1024, enabled: bool = True,
           max_chunks_per_run: int | None = None) -> str:
    """Bucket, tables, warehouse, roles, the loader (runs take turns by a lease) and its schedule;
    returns the rule's ARN. ``chunk_bytes`` and ``max_chunks_per_run`` bound the work of
    one run (to watch a big file spread over several runs)."""
    function_arn = deploy_loader(chunk_bytes, max_chunks_per_run)
    return ensure_schedule(function_arn, expression, enabled)


def deploy_loader(chunk_bytes: int = 8 * 1024 * 1024, max_chunks_per_run: int | None = None) -> str:
    """Everything of ``deploy`` but the schedule: bucket, tables, warehouse, roles and the
    loader; returns the function's ARN (notebook 08 makes the schedule by hand)."""
    bucket_arn = dp.ensure_bucket(bucket_name())
    table_arns = dynamodb.ensure_tables()
    warehouse_pipeline.ensure_cluster()
    warehouse_pipeline.create_table()
    aws.client("s3").put_object(Bucket=bucket_name(), Key=f"{PREFIX}config/jsonpaths.json",
                                Body=json.dumps(warehouse_pipeline.JSONPATHS, indent=2).encode(),
                                ContentType="application/json")
    copy_role = ensure_copy_role(bucket_arn)
    attach_copy_role(copy_role)
    role = dp.ensure_role(FUNCTION, policy(bucket_arn, table_arns))
    function_arn = dp.deploy_function(FUNCTION, role, environment={
        "BUCKET": bucket_name(), "PREFIX": PREFIX,
        "INVOICES_TABLE": dynamodb.invoices_table(), "CUSTOMERS_TABLE": dynamodb.customers_table(),
        "CLUSTER_ID": wh.cluster_id(), "DATABASE": wh.DATABASE, "DB_USER": wh.DB_USER,
        "WAREHOUSE_TABLE": warehouse_pipeline.TABLE, "JSONPATHS": jsonpaths_url(),
        "COPY_ROLE_ARN": copy_role, "CHUNK_BYTES": str(chunk_bytes),
        **({"MAX_CHUNKS_PER_RUN": str(max_chunks_per_run)} if max_chunks_per_run else {}),
    })["FunctionArn"]
    # One run at a time, without reserved concurrency (refused on a new account, whose
    # quota of 10 is all kept unreserved): each run takes a lease in S3 first (see
    # lambda_src/shared/lease.py); a run that finds it held ends at once.
    return function_arn


# ---- files ------------------------------------------------------------------------------


def monthly_files(df: pd.DataFrame, folder: str | Path) -> list[Path]:
    """Split ``df`` by month of InvoiceDate into CSV files (Kaggle layout plus RowId),
    ``<folder>/online_retail_YYYY-MM.csv``; returns their paths."""
    folder = Path(folder)
    paths = []
    for month, part in df.groupby(df["InvoiceDate"].dt.strftime("%Y-%m"), sort=True):
        paths.append(data.write_csv(part, folder / f"online_retail_{month}.csv", row_ids=True))
    return paths


def drop_file(path: str | Path, name: str | None = None) -> str:
    """Upload a local file to batch/incoming/; returns its key."""
    path = Path(path)
    key = INCOMING + (name or path.name)
    aws.client("s3").upload_file(str(path), bucket_name(), key)
    return key


def drop_bytes(name: str, body: bytes) -> str:
    """Put ``body`` in batch/incoming/ as ``name``; returns its key."""
    key = INCOMING + name
    aws.client("s3").put_object(Bucket=bucket_name(), Key=key, Body=body)
    return key


def files() -> dict[str, list[str]]:
    """The file names in each batch folder: incoming, processed, failed (reports left out)."""
    s3, found = aws.client("s3"), {}
    for folder in ("incoming", "processed", "failed"):
        prefix = f"{PREFIX}{folder}/"
        names = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket_name(), Prefix=prefix):
            names += [item["Key"][len(prefix):] for item in page.get("Contents", [])]
        found[folder] = sorted(n for n in names if not n.endswith((".report.json", ".errors.json")))
    return found


def report(name: str) -> dict:
    """The report of a processed file, or the error report of a failed one."""
    s3 = aws.client("s3")
    for key in (f"{PREFIX}processed/{name}.report.json", f"{PREFIX}failed/{name}.errors.json"):
        try:
            return json.loads(s3.get_object(Bucket=bucket_name(), Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            continue
    raise LookupError(f"no report for {name!r} (still waiting in incoming/?)")


def merge_sql(source_url: str, copy_role_arn: str = "<copy role ARN>") -> list[str]:
    """The SQL the loader runs to merge one staged chunk into the warehouse, taken from the
    handler's own code (``merge_sql`` in lambda_src/shared/warehouse_merge.py, which the
    batch_loader handler imports)."""
    handler = dp.load_handler(FUNCTION)
    settings_ = handler.load_settings({
        "BUCKET": bucket_name(), "INVOICES_TABLE": "-", "CUSTOMERS_TABLE": "-", "CLUSTER_ID": wh.cluster_id(),
        "DATABASE": wh.DATABASE, "DB_USER": wh.DB_USER, "WAREHOUSE_TABLE": warehouse_pipeline.TABLE,
        "JSONPATHS": jsonpaths_url(), "COPY_ROLE_ARN": copy_role_arn})
    return handler.merge_sql(settings_, source_url)


# ---- running it -------------------------------------------------------------------------


def run_now() -> list[dict]:
    """Fire the schedule once now and wait for the run; returns each target's outcome.

    On the embedded AWS the local scheduler fires the rule (the same path as its timer).
    On AWS a rule cannot be fired by hand: the function is invoked with the event the
    rule would send, as the console's "Test" button does.
    """
    if settings().is_local:
        from ecomlib.local import server

        aws.endpoint_url()  # make sure it runs
        return server.control("scheduler/run", {"rule": rule_name()})["fired"]
    from datetime import datetime, timezone

    rule_arn = aws.client("events").describe_rule(Name=rule_name())["Arn"]
    event = schedule.scheduled_event(rule_arn, datetime.now(timezone.utc), aws.account_id(), aws.region())
    answer = aws.client("lambda").invoke(FunctionName=dp.function_name(FUNCTION), Payload=json.dumps(event).encode())
    payload = json.loads(answer["Payload"].read() or b"null")
    return [{"rule": rule_name(), "target": "batch-loader", "ok": "FunctionError" not in answer,
             "response": payload}]


def advance_clock(seconds: float) -> list[dict]:
    """Move the embedded AWS's clock forward, firing every schedule due meanwhile (local only:
    on AWS, time passes by itself)."""
    if not settings().is_local:
        raise RuntimeError("only the embedded AWS has a clock to move; on AWS, wait or use run_now()")
    from ecomlib.local import server

    aws.endpoint_url()
    return server.control("scheduler/advance", {"seconds": seconds})["fired"]


def wait_for_next_run(timeout: float = 900, progress: bool = False) -> dict[str, list[str]]:
    """Wait for the schedule's next run to load what waits in incoming/; returns
    :func:`files` afterwards.

    On the embedded AWS the scheduler's clock is moved to the rule's next firing time, so
    the run happens at once, exactly as it would at that time. On AWS this waits (polling
    S3 every 15 s) until incoming/ is empty, up to ``timeout`` seconds. ``progress``: a text
    bar (on standard output) of the files that have left incoming/ meanwhile.
    """
    import time

    if settings().is_local:
        from datetime import datetime

        from ecomlib.local import server

        aws.endpoint_url()
        rule_arn = aws.client("events").describe_rule(Name=rule_name())["Arn"]
        state = server.status()["scheduler"]
        if rule_arn not in state["next"]:  # a rule the scheduler has not looked at yet
            server.control("scheduler/advance", {"seconds": 0})
            state = server.status()["scheduler"]
        moment = datetime.fromisoformat(state["next"][rule_arn].replace("Z", "+00:00"))
        clock = datetime.fromisoformat(state["clock"].replace("Z", "+00:00"))
        def fire() -> list[dict]:
            return server.control("scheduler/advance", {"seconds": (moment - clock).total_seconds() + 1})["fired"]

        fired = _watching_incoming(fire) if progress else fire()
        failed = [o for o in fired if o["rule"] == rule_name() and not o.get("ok")]
        if failed:
            raise RuntimeError(f"the batch loader failed: {failed}")
        return files()
    deadline = time.monotonic() + timeout

    def wait() -> None:
        while files()["incoming"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"files still waiting after {timeout:.0f} s: is the rule enabled?")
            time.sleep(15)

    _watching_incoming(wait) if progress else wait()
    return files()


def _watching_incoming(call):
    """``call()``, with a bar of the files that leave incoming/ while it runs (polled every second)."""
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as StillRunning

    from tqdm.std import tqdm  # a text bar: a saved notebook shows its final state

    total = len(files()["incoming"])
    with ThreadPoolExecutor(max_workers=1) as pool, \
            tqdm(total=total, unit="file", desc="files loaded", file=sys.stdout) as bar:
        running = pool.submit(call)
        while True:
            try:
                answer = running.result(timeout=1)
                break
            except StillRunning:
                bar.n = total - len(files()["incoming"])
                bar.refresh()
        bar.n = total - len(files()["incoming"])
        bar.refresh()
    return answer


def run_until_done(max_runs: int = 50) -> list[dict]:
    """Fire the schedule until batch/incoming/ is empty; returns every outcome."""
    outcomes: list[dict] = []
    for _ in range(max_runs):
        fired = run_now()
        outcomes += fired
        if not any(o.get("ok") for o in fired):
            raise RuntimeError(f"the batch loader failed: {fired}")
        if not files()["incoming"]:
            return outcomes
    raise TimeoutError(f"files still waiting after {max_runs} runs: {files()['incoming']}")


def teardown() -> None:
    """Remove the schedule, the loader, its roles and everything under batch/ (the
    tables, the warehouse and the bucket belong to their own pipelines)."""
    events = aws.client("events")
    try:
        events.remove_targets(Rule=rule_name(), Ids=["batch-loader"])
        events.delete_rule(Name=rule_name())
    except events.exceptions.ResourceNotFoundException:
        pass
    dp.delete_function(FUNCTION)
    role = copy_role_name()
    redshift = aws.client("redshift")
    try:
        cluster = redshift.describe_clusters(ClusterIdentifier=wh.cluster_id())["Clusters"][0]
        arns = [r["IamRoleArn"] for r in cluster.get("IamRoles", []) if r["IamRoleArn"].endswith(f"/{role}")]
        if arns:
            redshift.modify_cluster_iam_roles(ClusterIdentifier=wh.cluster_id(), RemoveIamRoles=arns)
    except redshift.exceptions.ClusterNotFoundFault:
        pass
    dp.delete_role(role)
    dp.delete_objects(bucket_name(), PREFIX)
