"""Deploy the course's Lambda functions and APIs with the ordinary AWS APIs.

- :func:`package` zips ``lambda_src/<function>/`` with ``lambda_src/shared/`` (the code
  the functions share, as a Lambda layer would add it).
- :func:`ensure_role` gives each function its own IAM role with a least-privilege
  inline policy: only the actions it calls, on only the resources it touches.
- :func:`deploy_function` creates or updates the function (code and configuration).
- :func:`ensure_rest_api`, :func:`add_lambda_route`, :func:`deploy_stage` build an API
  Gateway REST API with Lambda proxy integrations; :func:`api_url` says where it answers.
- :func:`wait_until` and :func:`retry_while_propagating`: AWS finishes many changes after
  the call returns (a mapping is ``Creating``, a new role is not usable yet, a deleted
  queue's name is taken for 60 s); the code here waits on the state AWS reports.

Everything is created with the course's tags (:func:`tags`: the course and the prefix)
in its create call, so nothing exists untagged and ``ecomlib.teardown`` can tell one
learner's resources from another's on a shared account.

Every call here works the same on the embedded AWS and on a real account.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable

from botocore.exceptions import ClientError

from ecomlib import aws, registry
from ecomlib.config import resource_name, settings

LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"
RUNTIME = registry.LAMBDA_RUNTIME  # one place: ecomlib/registry.py
LOG_RETENTION_DAYS = 14
FUNCTION_WAIT = {"Delay": 0.5, "MaxAttempts": 600}  # polling State / LastUpdateStatus (5 min at most)
SHARED = "shared"  # lambda_src/shared/: code every function's package includes
PACKAGE_EXCLUDE = {"events", "tests", "__pycache__", "README.md"}

LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }],
}


def tags() -> dict[str, str]:
    """The tags of everything created now: ``course`` and ``ecom:prefix`` (``ecomlib.registry``)."""
    return registry.tags(settings().prefix)


def tag_list() -> list[dict[str, str]]:
    """:func:`tags` as ``[{"Key": ..., "Value": ...}]`` (IAM, S3, DynamoDB, Redshift, ...)."""
    return registry.tag_list(settings().prefix)


# ---- waiting for AWS -------------------------------------------------------------------


def wait_until(describe: Callable[[], Any], state: Any, timeout: float, what: str) -> Any:
    """Call ``describe()`` until it returns ``state`` (a value, a tuple of accepted values,
    or a predicate); returns the last value. Polls quickly at first, then every few
    seconds, as AWS's waiters do. After ``timeout`` seconds raises TimeoutError naming
    ``what``, the state it is in and the one awaited."""
    accepted = state if callable(state) else (
        (lambda value: value in state) if isinstance(state, (tuple, list, set, frozenset)) else
        (lambda value: value == state))
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        current = describe()
        if accepted(current):
            return current
        if time.monotonic() >= deadline:
            wanted = getattr(state, "__doc__", None) if callable(state) else state
            raise TimeoutError(f"{what}: still {current!r} after {timeout:.0f} s (waiting for {wanted})")
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 5.0)


# Errors AWS gives while a new role or policy is not yet visible to the service using it
# (IAM is eventually consistent): (error code, part of the message).
PROPAGATION_ERRORS = (
    # CreateFunction with a new role
    ("InvalidParameterValueException", "cannot be assumed by Lambda"),
    # CreateEventSourceMapping before the role's new policy may read the stream / send to the queue
    ("InvalidParameterValueException", "Please ensure the role can perform"),
    ("InvalidParameterValueException", "execution role does not have permissions"),
    # CreateDeliveryStream with a new role
    ("InvalidArgumentException", "unable to assume role"),
    ("InvalidArgumentException", "Please check the role provided"),
)


def _propagating(error: ClientError) -> bool:
    code, message = error.response["Error"].get("Code", ""), error.response["Error"].get("Message", "")
    return any(code == c and part.lower() in message.lower() for c, part in PROPAGATION_ERRORS)


def retry_while_propagating(call: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    """``call()``, again with backoff while AWS answers that a new role or policy is not
    usable yet (:data:`PROPAGATION_ERRORS`); other errors are raised at once."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        try:
            return call()
        except ClientError as error:
            if not _propagating(error):
                raise
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what}: the new role or policy was still not usable after {timeout:.0f} s "
                                   f"({error.response['Error']['Message']})") from error
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 5.0)


def function_name(function: str) -> str:
    """The deployed name of ``lambda_src/<function>``: ``ecom-ingest-api`` for ``ingest_api``."""
    return resource_name(function.replace("_", "-"))


def package(function: str) -> bytes:
    """The deployment package of ``lambda_src/<function>/`` as zip bytes.

    The function's folder is the root of the zip, and ``lambda_src/shared/`` is added as
    the ``shared`` package its handler imports. Deterministic (fixed timestamps, sorted
    names): the same code gives the same CodeSha256, so redeploying unchanged code
    changes nothing.
    """
    source = LAMBDA_SRC / function
    if not (source / "handler.py").exists():
        raise FileNotFoundError(f"no handler.py in {source}")
    files = {path.relative_to(source): path for path in source.rglob("*")}
    files.update({path.relative_to(LAMBDA_SRC): path for path in (LAMBDA_SRC / SHARED).rglob("*")})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative, path in sorted(files.items()):
            if path.is_dir() or PACKAGE_EXCLUDE & set(relative.parts) or path.suffix == ".pyc":
                continue
            info = zipfile.ZipInfo(str(relative), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def load_handler(function: str):
    """``lambda_src/<function>/handler.py`` as a module, to call its functions from Python
    (it imports ``shared`` as in its deployment package)."""
    import importlib.util
    import sys

    if str(LAMBDA_SRC) not in sys.path:
        sys.path.insert(0, str(LAMBDA_SRC))
    name = f"{function}_handler"
    spec = importlib.util.spec_from_file_location(name, LAMBDA_SRC / function / "handler.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def load_shared(name: str):
    """``lambda_src/shared/<name>.py`` (code the functions share) as a module."""
    import importlib
    import sys

    if str(LAMBDA_SRC) not in sys.path:
        sys.path.insert(0, str(LAMBDA_SRC))
    return importlib.import_module(f"{SHARED}.{name}")


def log_group_arn(function: str) -> str:
    """ARN of the function's CloudWatch Logs group (its role may write only there)."""
    return f"arn:aws:logs:{aws.region()}:{aws.account_id()}:log-group:/aws/lambda/{function_name(function)}:*"


def ensure_role(function: str, statements: list[dict]) -> str:
    """Create or update the function's own role; returns its ARN.

    ``statements`` are the IAM statements for what the function does (e.g. put records
    on one stream). Writing its own logs is added here, scoped to its log group.
    """
    iam = aws.client("iam")
    role = resource_name(function.replace("_", "-"), "role")
    try:
        arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchEntity":
            raise
        arn = iam.create_role(
            RoleName=role,
            AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY),
            Description=f"Runs the course function {function_name(function)}", Tags=tag_list(),
        )["Role"]["Arn"]
    logs = {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": log_group_arn(function),
    }
    policy = {"Version": "2012-10-17", "Statement": [logs, *statements]}
    iam.put_role_policy(RoleName=role, PolicyName="least-privilege", PolicyDocument=json.dumps(policy))
    return arn


def role_policy(function: str) -> dict:
    """The inline policy document of the function's role (to read it in a notebook)."""
    role = resource_name(function.replace("_", "-"), "role")
    document = aws.client("iam").get_role_policy(RoleName=role, PolicyName="least-privilege")["PolicyDocument"]
    return json.loads(document) if isinstance(document, str) else document


def deploy_function(function: str, role_arn: str, environment: dict[str, str],
                    timeout: int | None = None, memory: int | None = None) -> dict:
    """Create ``lambda_src/<function>`` as a Lambda function, or update its code and
    configuration if it exists. Returns the function's configuration once it is ready.
    ``timeout`` (s) and ``memory`` (MB) default to the function's declaration
    (``ecomlib.registry``)."""
    declared = registry.function(function)
    timeout = declared.timeout_s if timeout is None else timeout
    memory = declared.memory_mb if memory is None else memory
    lam = aws.client("lambda")
    name = function_name(function)
    config = dict(
        Role=role_arn, Handler="handler.lambda_handler", Runtime=RUNTIME, Timeout=timeout,
        MemorySize=memory, Environment={"Variables": environment},
    )
    code = package(function)
    try:
        current = lam.get_function(FunctionName=name)["Configuration"]
    except lam.exceptions.ResourceNotFoundException:
        current = None
    if current is None:
        # On AWS a new role takes a few seconds before Lambda may assume it.
        retry_while_propagating(lambda: lam.create_function(
            FunctionName=name, Code={"ZipFile": code}, Publish=False, Tags=tags(), **config), f"creating function {name}")
    else:
        # One change at a time: AWS refuses an update while the last one is InProgress
        # (ResourceConflictException), so wait for LastUpdateStatus Successful in between.
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FUNCTION_WAIT)
        lam.update_function_configuration(FunctionName=name, **config)
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FUNCTION_WAIT)
        lam.update_function_code(FunctionName=name, ZipFile=code)
    # A new function is Pending (Invoke refused) until Active; an update InProgress until Successful.
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FUNCTION_WAIT)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FUNCTION_WAIT)
    ensure_log_group(function)
    return lam.get_function_configuration(FunctionName=name)


def ensure_log_group(function: str) -> str:
    """The function's log group, kept LOG_RETENTION_DAYS days. (Lambda would create it at
    the first invocation, keeping logs forever, and billing for them.)"""
    logs = aws.client("logs")
    group = f"/aws/lambda/{function_name(function)}"
    try:
        logs.create_log_group(logGroupName=group, tags=tags())
    except logs.exceptions.ResourceAlreadyExistsException:  # Lambda made it, untagged, at a first run
        logs.tag_resource(resourceArn=f"arn:aws:logs:{aws.region()}:{aws.account_id()}:log-group:{group}",
                          tags=tags())
    logs.put_retention_policy(logGroupName=group, retentionInDays=LOG_RETENTION_DAYS)
    return group


def delete_function(function: str) -> None:
    """Delete the function, its log group and its role (missing ones are fine)."""
    lam, logs = aws.client("lambda"), aws.client("logs")
    try:
        lam.delete_function(FunctionName=function_name(function))
    except lam.exceptions.ResourceNotFoundException:
        pass
    try:  # on AWS a log group outlives its function (and keeps costing) unless deleted
        logs.delete_log_group(logGroupName=f"/aws/lambda/{function_name(function)}")
    except logs.exceptions.ResourceNotFoundException:
        pass
    delete_role(resource_name(function.replace("_", "-"), "role"))


def delete_role(role: str) -> None:
    """Delete a role with its inline and attached policies (a missing one is fine)."""
    iam = aws.client("iam")
    try:
        for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            iam.delete_role_policy(RoleName=role, PolicyName=policy)
        for policy in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
        iam.delete_role(RoleName=role)
    except iam.exceptions.NoSuchEntityException:
        pass


def function_logs(function: str) -> list[str]:
    """Every line of the function's CloudWatch log, oldest first (all its log streams)."""
    logs = aws.client("logs")
    group = f"/aws/lambda/{function_name(function)}"
    events = [(event["timestamp"], event["message"])
              for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]
              for event in logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])["events"]]
    return [message for _, message in sorted(events)]


# ---- API Gateway ----------------------------------------------------------------------


def ensure_rest_api(name: str) -> str:
    """The id of the REST API called ``name``, creating it if needed."""
    apigw = aws.client("apigateway")
    for page in apigw.get_paginator("get_rest_apis").paginate():
        for api in page["items"]:
            if api["name"] == name:
                return api["id"]
    return apigw.create_rest_api(
        name=name, description="E-commerce course API", endpointConfiguration={"types": ["REGIONAL"]}, tags=tags(),
    )["id"]


def ensure_resource(api_id: str, path: str) -> str:
    """The id of resource ``path`` (e.g. ``/customers/{CustomerID}``), creating each part."""
    apigw = aws.client("apigateway")
    resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=api_id, limit=500)["items"]}
    current = "/"
    for part in [p for p in path.split("/") if p]:
        child = current.rstrip("/") + "/" + part
        if child not in resources:
            resources[child] = apigw.create_resource(
                restApiId=api_id, parentId=resources[current], pathPart=part)["id"]
        current = child
    return resources[current]


def add_lambda_route(api_id: str, path: str, method: str, function: str) -> None:
    """Route ``method path`` to the function with a Lambda proxy integration, and let
    API Gateway (this API only) invoke the function."""
    apigw, lam = aws.client("apigateway"), aws.client("lambda")
    resource_id = ensure_resource(api_id, path)
    fn_arn = lam.get_function(FunctionName=function_name(function))["Configuration"]["FunctionArn"]
    try:
        apigw.put_method(restApiId=api_id, resourceId=resource_id, httpMethod=method,
                         authorizationType="NONE")
    except apigw.exceptions.ConflictException:
        pass
    region = aws.region()
    apigw.put_integration(
        restApiId=api_id, resourceId=resource_id, httpMethod=method, type="AWS_PROXY",
        integrationHttpMethod="POST",  # Lambda is always invoked with POST
        uri=f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{fn_arn}/invocations",
    )
    statement_id = f"apigw-{api_id}-{method}-{path.strip('/').replace('/', '-').replace('{', '').replace('}', '')}"
    try:
        lam.add_permission(
            FunctionName=function_name(function), StatementId=statement_id[:100],
            Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
            # The method in a permission's ARN is the one actually called: ANY matches all (*).
            SourceArn=f"arn:aws:execute-api:{region}:{aws.account_id()}:{api_id}/*/"
                      f"{'*' if method == 'ANY' else method}{path}",
        )
    except lam.exceptions.ResourceConflictException:
        pass


def deploy_stage(api_id: str, stage: str = "dev") -> str:
    """Deploy the API's current definition to ``stage``; returns the stage's base URL."""
    aws.client("apigateway").create_deployment(restApiId=api_id, stageName=stage)
    return api_url(api_id, stage)


def api_url(api_id: str, stage: str = "dev") -> str:
    """Base URL of a deployed stage: AWS's execute-api URL, or the embedded AWS's local one."""
    s = settings()
    if s.target == "aws":
        return f"https://{api_id}.execute-api.{aws.region()}.amazonaws.com/{stage}"
    if s.target == "local":
        from ecomlib.local import server

        name = aws.client("apigateway").get_rest_api(restApiId=api_id)["name"]
        apis = (server.status() or {}).get("apis", {})
        url = apis.get(name) or apis.get(f"{name}/{stage}")
        if url is None:
            raise RuntimeError(f"API {name} has no stage {stage} on the embedded AWS")
        return url.rsplit("/", 1)[0] + f"/{stage}"
    # Another AWS-compatible endpoint (a moto server or LocalStack) routes by path.
    return f"{s.endpoint_url}/restapis/{api_id}/{stage}/_user_request_"


def delete_rest_api(name: str) -> None:
    """Delete the REST API called ``name`` if it exists."""
    apigw = aws.client("apigateway")
    for api in apigw.get_rest_apis(limit=500)["items"]:
        if api["name"] == name:
            apigw.delete_rest_api(restApiId=api["id"])


# ---- storage and wiring ---------------------------------------------------------------


def ensure_bucket(name: str) -> str:
    """Create the S3 bucket if needed; returns its ARN."""
    s3 = aws.client("s3")
    region = aws.region()
    configuration = {"Tags": tag_list()}
    if region != "us-east-1":  # the one region named by no LocationConstraint
        configuration["LocationConstraint"] = region
    try:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration=configuration)
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    s3.get_waiter("bucket_exists").wait(Bucket=name)
    return f"arn:aws:s3:::{name}"


def delete_objects(bucket: str, prefix: str = "") -> None:
    """Delete every object whose key starts with ``prefix`` (a missing bucket is fine)."""
    s3 = aws.client("s3")
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:  # a page holds at most 1,000 keys: what DeleteObjects takes
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    except s3.exceptions.NoSuchBucket:
        pass


def empty_and_delete_bucket(name: str) -> None:
    """Delete every object of the bucket, then the bucket (a missing one is fine)."""
    s3 = aws.client("s3")
    delete_objects(name)
    try:
        s3.delete_bucket(Bucket=name)
    except s3.exceptions.NoSuchBucket:
        pass


def ensure_table(name: str, partition_key: str, sort_key: str | None = None) -> str:
    """Create an on-demand DynamoDB table with string keys if needed; returns its ARN."""
    ddb = aws.client("dynamodb")
    keys = [(partition_key, "HASH")] + ([(sort_key, "RANGE")] if sort_key else [])
    try:
        ddb.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys], Tags=tag_list(),
        )
    except ddb.exceptions.ResourceInUseException:
        pass
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    return ddb.describe_table(TableName=name)["Table"]["TableArn"]


def delete_table(name: str) -> None:
    """Delete the table if it exists."""
    ddb = aws.client("dynamodb")
    try:
        ddb.delete_table(TableName=name)
        ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    except ddb.exceptions.ResourceNotFoundException:
        pass


def ensure_queue(name: str) -> str:
    """Create the SQS queue if needed (e.g. a dead-letter queue); returns its ARN. A name
    deleted less than 60 s ago is refused by SQS (``QueueDeletedRecently``): this waits."""
    sqs = aws.client("sqs")

    def create() -> str | None:
        try:
            return sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "1209600"},
                                    tags=tags())["QueueUrl"]
        except sqs.exceptions.QueueDeletedRecently:
            return None  # AWS keeps a deleted queue's name for 60 s

    url = wait_until(create, lambda url: url is not None, 120, f"creating queue {name} (deleted recently)")
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def delete_queue(name: str) -> None:
    """Delete the queue if it exists."""
    sqs = aws.client("sqs")
    try:
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except sqs.exceptions.QueueDoesNotExist:
        pass


SETTLED = ("Enabled", "Disabled", "Deleted")  # a mapping's states that are not transitions


def mapping_state(uuid: str) -> str:
    """An event source mapping's ``State`` (``Creating``, ``Enabled``, ...; ``Deleted``: gone)."""
    lam = aws.client("lambda")
    try:
        return lam.get_event_source_mapping(UUID=uuid)["State"]
    except lam.exceptions.ResourceNotFoundException:
        return "Deleted"


def wait_for_mapping(uuid: str, states: Iterable[str] = SETTLED, timeout: float = 300) -> str:
    """Wait until the mapping is in one of ``states`` (by default: no longer Creating,
    Enabling, Disabling, Updating or Deleting, when AWS accepts a change again)."""
    return wait_until(lambda: mapping_state(uuid), tuple(states), timeout, f"event source mapping {uuid}")


def delete_mapping(uuid: str) -> None:
    """Delete an event source mapping and wait until it is gone (it is ``Deleting`` for a
    while; until then a new mapping of the same function and stream is refused)."""
    lam = aws.client("lambda")
    if wait_for_mapping(uuid) != "Deleted":
        try:
            lam.delete_event_source_mapping(UUID=uuid)
        except lam.exceptions.ResourceNotFoundException:
            pass
    wait_for_mapping(uuid, ["Deleted"])


def ensure_stream_mapping(function: str, stream_arn: str, dead_letter_arn: str, *,
                          batch_size: int = 100, window_seconds: int = 1, max_retries: int = 3,
                          bisect: bool = True, enabled: bool = True) -> str:
    """Connect the function to the Kinesis stream (an event source mapping); returns its UUID
    once the mapping is ``Enabled`` (or ``Disabled``).

    Lambda then polls every shard and invokes the function with batches of records, in
    order per shard. The function reports records it could not process
    (``ReportBatchItemFailures``); a failing batch is split in two to find the bad record
    (``BisectBatchOnFunctionError``), retried ``max_retries`` times, and then described in
    a message to the dead-letter queue so the shard can move on. A mapping still
    ``Deleting`` is waited for before a new one is created.
    """
    lam = aws.client("lambda")
    settings = dict(
        BatchSize=batch_size, MaximumBatchingWindowInSeconds=window_seconds,
        FunctionResponseTypes=["ReportBatchItemFailures"], MaximumRetryAttempts=max_retries,
        BisectBatchOnFunctionError=bisect,
        DestinationConfig={"OnFailure": {"Destination": dead_letter_arn}},
    )
    name = function_name(function)
    target = "Enabled" if enabled else "Disabled"
    for mapping in lam.list_event_source_mappings(FunctionName=name, EventSourceArn=stream_arn)["EventSourceMappings"]:
        if wait_for_mapping(mapping["UUID"]) == "Deleted":
            continue
        lam.update_event_source_mapping(UUID=mapping["UUID"], FunctionName=name, Enabled=enabled, **settings)
        wait_for_mapping(mapping["UUID"], [target])
        return mapping["UUID"]
    uuid = retry_while_propagating(lambda: lam.create_event_source_mapping(
        FunctionName=name, EventSourceArn=stream_arn, StartingPosition="TRIM_HORIZON", Enabled=enabled,
        Tags=tags(), **settings,
    ), f"connecting {name} to its stream")["UUID"]
    wait_for_mapping(uuid, [target])
    return uuid


def enable_stream_mappings(function: str, enabled: bool = True) -> None:
    """Switch the function's event source mappings on or off (off: records wait in the
    stream); returns once they are ``Enabled`` / ``Disabled``."""
    lam = aws.client("lambda")
    target = "Enabled" if enabled else "Disabled"
    for mapping in lam.list_event_source_mappings(FunctionName=function_name(function))["EventSourceMappings"]:
        if wait_for_mapping(mapping["UUID"]) in (target, "Deleted"):
            continue
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)
        wait_for_mapping(mapping["UUID"], [target])


def delete_stream_mappings(function: str) -> None:
    """Remove every event source mapping of the function, and wait until they are gone
    (so that a new one can be created at once)."""
    lam = aws.client("lambda")
    try:
        mappings = lam.list_event_source_mappings(FunctionName=function_name(function))["EventSourceMappings"]
    except lam.exceptions.ResourceNotFoundException:
        return
    for mapping in mappings:
        delete_mapping(mapping["UUID"])


def delivery_stream_status(name: str) -> str:
    """A Firehose delivery stream's status (``CREATING``, ``ACTIVE``, ``DELETING``, ...;
    ``DELETED`` once it is gone)."""
    firehose = aws.client("firehose")
    try:
        return firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"][
            "DeliveryStreamStatus"]
    except firehose.exceptions.ResourceNotFoundException:
        return "DELETED"


def wait_for_delivery_stream(name: str, status: str = "ACTIVE", timeout: float = 600) -> str:
    """Wait until the delivery stream is ``status``: ``ACTIVE`` after a create (it reads its
    Kinesis source from LATEST once active: rows sent before are not delivered), or
    ``DELETED`` after DeleteDeliveryStream, which returns before the stream is gone."""
    return wait_until(lambda: delivery_stream_status(name), status, timeout, f"delivery stream {name}")


def delete_delivery_stream(name: str) -> None:
    """Delete the delivery stream and wait until it is gone (a missing one is fine)."""
    firehose = aws.client("firehose")
    try:
        firehose.delete_delivery_stream(DeliveryStreamName=name)
    except firehose.exceptions.ResourceNotFoundException:
        return
    except firehose.exceptions.ResourceInUseException:
        pass  # already DELETING (or CREATING: AWS refuses to delete it until it is ACTIVE)
    if delivery_stream_status(name) == "CREATING":
        wait_for_delivery_stream(name, "ACTIVE")
        firehose.delete_delivery_stream(DeliveryStreamName=name)
    wait_for_delivery_stream(name, "DELETED")


def wait_for_clusters_using(group_id: str, timeout: float = 1800) -> None:
    """Wait until no Redshift cluster uses the security group (one being deleted still
    does: DeleteSecurityGroup is refused with DependencyViolation until it is gone)."""
    redshift = aws.client("redshift")
    for cluster in redshift.describe_clusters().get("Clusters", []):
        if group_id in [g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups", [])]:
            if cluster.get("ClusterStatus") != "deleting":
                raise RuntimeError(f"security group {group_id} is used by cluster "
                                   f"{cluster['ClusterIdentifier']}, which is not being deleted")
            redshift.get_waiter("cluster_deleted").wait(
                ClusterIdentifier=cluster["ClusterIdentifier"],
                WaiterConfig={"Delay": 15, "MaxAttempts": max(1, int(timeout // 15))})


def stream_reader_policy(stream_arn: str) -> dict:
    """What a function fed by a Kinesis event source mapping needs on that one stream."""
    return {
        "Sid": "ReadTheInvoiceStream",
        "Effect": "Allow",
        "Action": ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
                   "kinesis:GetShardIterator", "kinesis:ListShards"],
        "Resource": stream_arn,
    }


def dead_letter_policy(queue_arn: str) -> dict:
    """Lets the mapping send descriptions of failed batches to the one dead-letter queue."""
    return {"Sid": "SendFailuresToTheDeadLetterQueue", "Effect": "Allow",
            "Action": ["sqs:SendMessage"], "Resource": queue_arn}


def remove_route(api_id: str, path: str, method: str) -> None:
    """Remove ``method`` from resource ``path`` of the API (a missing one is fine)."""
    apigw = aws.client("apigateway")
    resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=api_id, limit=500)["items"]}
    if path in resources:
        try:
            apigw.delete_method(restApiId=api_id, resourceId=resources[path], httpMethod=method)
        except apigw.exceptions.NotFoundException:
            pass


def find_rest_api(name: str) -> str | None:
    """The id of the REST API called ``name``, or None."""
    for api in aws.client("apigateway").get_rest_apis(limit=500)["items"]:
        if api["name"] == name:
            return api["id"]
    return None
