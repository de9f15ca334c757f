"""Deploy the course's Lambda functions and APIs with the ordinary AWS APIs.

- :func:`package` zips ``lambda_src/<function>/`` with ``lambda_src/shared/`` (the code
  the functions share, as a Lambda layer would add it).
- :func:`ensure_role` gives each function its own IAM role with a least-privilege
  inline policy: only the actions it calls, on only the resources it touches.
- :func:`deploy_function` creates or updates the function (code and configuration).
- :func:`ensure_rest_api`, :func:`add_lambda_route`, :func:`deploy_stage` build an API
  Gateway REST API with Lambda proxy integrations; :func:`api_url` says where it answers.

Every call here works the same on the embedded AWS and on a real account.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

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
            Description=f"Runs the course function {function_name(function)}",
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
        for attempt in range(10):
            try:
                lam.create_function(FunctionName=name, Code={"ZipFile": code}, Publish=False, **config)
                break
            except lam.exceptions.InvalidParameterValueException as error:
                # On AWS a new role takes a few seconds before Lambda may assume it.
                if "assume" not in str(error) or attempt == 9:
                    raise
                time.sleep(3)
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
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
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
        name=name, description="E-commerce course API", endpointConfiguration={"types": ["REGIONAL"]},
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
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
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
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
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
    """Create the SQS queue if needed (e.g. a dead-letter queue); returns its ARN."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def delete_queue(name: str) -> None:
    """Delete the queue if it exists."""
    sqs = aws.client("sqs")
    try:
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except sqs.exceptions.QueueDoesNotExist:
        pass


def ensure_stream_mapping(function: str, stream_arn: str, dead_letter_arn: str, *,
                          batch_size: int = 100, window_seconds: int = 1, max_retries: int = 3,
                          bisect: bool = True, enabled: bool = True) -> str:
    """Connect the function to the Kinesis stream (an event source mapping); returns its UUID.

    Lambda then polls every shard and invokes the function with batches of records, in
    order per shard. The function reports records it could not process
    (``ReportBatchItemFailures``); a failing batch is split in two to find the bad record
    (``BisectBatchOnFunctionError``), retried ``max_retries`` times, and then described in
    a message to the dead-letter queue so the shard can move on.
    """
    lam = aws.client("lambda")
    settings = dict(
        BatchSize=batch_size, MaximumBatchingWindowInSeconds=window_seconds,
        FunctionResponseTypes=["ReportBatchItemFailures"], MaximumRetryAttempts=max_retries,
        BisectBatchOnFunctionError=bisect,
        DestinationConfig={"OnFailure": {"Destination": dead_letter_arn}},
    )
    name = function_name(function)
    for mapping in lam.list_event_source_mappings(FunctionName=name, EventSourceArn=stream_arn)["EventSourceMappings"]:
        lam.update_event_source_mapping(UUID=mapping["UUID"], FunctionName=name, Enabled=enabled, **settings)
        return mapping["UUID"]
    return lam.create_event_source_mapping(
        FunctionName=name, EventSourceArn=stream_arn, StartingPosition="TRIM_HORIZON", Enabled=enabled,
        **settings,
    )["UUID"]


def enable_stream_mappings(function: str, enabled: bool = True) -> None:
    """Switch the function's event source mappings on or off (off: records wait in the stream)."""
    lam = aws.client("lambda")
    for mapping in lam.list_event_source_mappings(FunctionName=function_name(function))["EventSourceMappings"]:
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)


def delete_stream_mappings(function: str) -> None:
    """Remove every event source mapping of the function."""
    lam = aws.client("lambda")
    try:
        mappings = lam.list_event_source_mappings(FunctionName=function_name(function))["EventSourceMappings"]
    except lam.exceptions.ResourceNotFoundException:
        return
    for mapping in mappings:
        lam.delete_event_source_mapping(UUID=mapping["UUID"])
    # On AWS a mapping is "Deleting" for a while; wait, so a new one can be created at once.
    for mapping in mappings:
        for _ in range(120):
            try:
                lam.get_event_source_mapping(UUID=mapping["UUID"])
            except lam.exceptions.ResourceNotFoundException:
                break
            time.sleep(1)


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
