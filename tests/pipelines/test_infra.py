"""Infrastructure as code: the CloudFormation template passes cfn-lint, deploys on the
embedded AWS, declares what ecomlib builds step by step, and the stack it makes works."""

from __future__ import annotations

import json
import re

import pytest

from ecomlib import aws, client, data, deploy, infra, pipelines, registry, teardown
from ecomlib import redshift as wh
from ecomlib.pipelines import batch, dynamodb, ingest
from ecomlib.reconcile import reconcile


def test_template_passes_cfn_lint():
    assert infra.lint() == ""


def test_the_template_knows_firehose_s_block_in_every_region_it_serves():
    from ecomlib.pipelines import warehouse

    template = infra.TEMPLATE.read_text()
    mapped = dict(re.findall(r"^    ([a-z]{2}(?:-[a-z]+)+-\d): \{Cidr: ([0-9./]+)\}$", template, flags=re.M))
    assert mapped == warehouse.FIREHOSE_CIDRS
    assert "Password" not in re.sub(r"ManageMasterPassword|MasterPasswordSecretArn", "", template)


def _policy(role: str) -> list:
    iam = aws.client("iam")
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=names[0])["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    # a secret's ARN ends with six random characters: keep what names it
    listed = lambda value: sorted(_secret(v) for v in (value if isinstance(value, list) else [value]))  # noqa: E731
    return sorted((s["Sid"], tuple(listed(s["Action"])), tuple(listed(s["Resource"])), json.dumps(s.get("Condition")))
                  for s in document["Statement"])


def _secret(arn: str) -> str:
    return re.sub(r"(:secret:.+)-[A-Za-z0-9]{6}$", r"\1", arn)


def snapshot() -> dict:
    """What exists, described without ids that differ between two deployments."""
    lam, prefix = aws.client("lambda"), "ecom-"
    functions = {}
    for f in lam.list_functions()["Functions"]:
        if f["FunctionName"].startswith(prefix):
            concurrency = lam.get_function_concurrency(FunctionName=f["FunctionName"]).get("ReservedConcurrentExecutions")
            functions[f["FunctionName"]] = (f["Runtime"], f["Handler"], f["Timeout"], f["MemorySize"],
                                            f["Role"], f.get("Environment", {}).get("Variables"), concurrency,
                                            f["CodeSha256"])
    mappings = sorted((m["FunctionArn"], m["EventSourceArn"], m["BatchSize"], m["MaximumBatchingWindowInSeconds"],
                       m.get("BisectBatchOnFunctionError"), m.get("MaximumRetryAttempts"),
                       tuple(m.get("FunctionResponseTypes", [])), json.dumps(m.get("DestinationConfig")))
                      for m in lam.list_event_source_mappings()["EventSourceMappings"])
    ddb = aws.client("dynamodb")
    tables = {name: (ddb.describe_table(TableName=name)["Table"]["KeySchema"],
                     ddb.describe_table(TableName=name)["Table"].get("BillingModeSummary", {}).get("BillingMode"))
              for name in ddb.list_tables()["TableNames"] if name.startswith(prefix)}
    kinesis = aws.client("kinesis")
    streams = {name: kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"]
               for name in kinesis.list_streams()["StreamNames"]}
    sqs = aws.client("sqs")
    queues = {url.rsplit("/", 1)[-1]: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])
              ["Attributes"]["MessageRetentionPeriod"] for url in sqs.list_queues().get("QueueUrls", [])}
    buckets = sorted(b["Name"] for b in aws.client("s3").list_buckets()["Buckets"] if "artifacts" not in b["Name"])
    iam = aws.client("iam")
    roles = {r["RoleName"]: (json.dumps(r["AssumeRolePolicyDocument"], sort_keys=True), _policy(r["RoleName"]))
             for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(prefix)}
    apigw = aws.client("apigateway")
    api = deploy.find_rest_api(ingest.api_name())
    routes = sorted((r["path"], method, r["resourceMethods"][method].get("methodIntegration", {}).get("type")
                     if "methodIntegration" in r["resourceMethods"][method] else
                     apigw.get_integration(restApiId=api, resourceId=r["id"], httpMethod=method)["type"],
                     apigw.get_integration(restApiId=api, resourceId=r["id"], httpMethod=method)["uri"])
                    for r in apigw.get_resources(restApiId=api)["items"] for method in r.get("resourceMethods", {}))
    stages = sorted(s["stageName"] for s in apigw.get_stages(restApiId=api)["item"])
    events = aws.client("events")
    rules = {r["Name"]: (r.get("ScheduleExpression"), r["State"],
                         [t["Arn"] for t in events.list_targets_by_rule(Rule=r["Name"])["Targets"]])
             for r in events.list_rules()["Rules"]}
    redshift = aws.client("redshift")
    ec2 = aws.client("ec2")
    clusters = {}
    for c in redshift.describe_clusters()["Clusters"]:
        groups = [ec2.describe_security_groups(GroupIds=[g["VpcSecurityGroupId"]])["SecurityGroups"][0]
                  for g in c["VpcSecurityGroups"]]
        clusters[c["ClusterIdentifier"]] = (
            c["NodeType"], c["PubliclyAccessible"], c["Encrypted"], c["DBName"], c["MasterUsername"],
            sorted(r["IamRoleArn"] for r in c.get("IamRoles", [])),
            _secret(c.get("MasterPasswordSecretArn", "")),
            [(g["GroupName"], [(p["FromPort"], [r["CidrIp"] for r in p["IpRanges"]]) for p in g["IpPermissions"]])
             for g in groups])
    firehose = aws.client("firehose")
    deliveries = {}
    for name in firehose.list_delivery_streams()["DeliveryStreamNames"]:
        described = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        [destination] = described["Destinations"]
        redshift_dest = destination["RedshiftDestinationDescription"]
        deliveries[name] = (described["DeliveryStreamType"], described["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"],
                            redshift_dest["CopyCommand"], "Password" in redshift_dest,
                            {k: _secret(v) if k == "SecretARN" else v
                             for k, v in redshift_dest["SecretsManagerConfiguration"].items()},
                            # the cluster's host name has a random part: keep what names it
                            re.sub(r"//([a-z0-9-]+)\.[^:/]+", r"//\1.<host>", redshift_dest["ClusterJDBCURL"]),
                            redshift_dest["S3DestinationDescription"]["BucketARN"],
                            redshift_dest["S3DestinationDescription"]["Prefix"],
                            redshift_dest["S3DestinationDescription"]["BufferingHints"])
    logs = {g["logGroupName"]: g.get("retentionInDays") for g in aws.client("logs").describe_log_groups()["logGroups"]}
    return {"logs": logs, "functions": functions, "mappings": mappings, "tables": tables, "streams": streams, "queues": queues,
            "buckets": buckets, "roles": roles, "routes": routes, "stages": stages, "rules": rules,
            "clusters": clusters, "deliveries": deliveries}


@pytest.fixture(scope="module")
def clean():
    pipelines.teardown_all()
    teardown.run()
    yield
    infra.delete_stack()
    pipelines.teardown_all()
    teardown.run()


def test_the_stack_declares_what_ecomlib_builds_step_by_step(clean):
    infra.deploy_stack()
    assert infra.stack_status() == "CREATE_COMPLETE"
    by_template = snapshot()
    infra.delete_stack()
    assert teardown.inventory() == {}, "deleting the stack leaves nothing behind"
    pipelines.deploy_all(every=True)  # every pipeline of the registry, step by step
    by_steps = snapshot()
    pipelines.teardown_all()
    teardown.run()
    for part in by_steps:
        assert by_template[part] == by_steps[part], f"{part} differs between the template and the step-by-step build"


def test_the_stack_runs_the_pipelines(clean):
    infra.deploy_stack()
    sample = data.load(rows=600)
    url = f"{deploy.api_url(deploy.find_rest_api(ingest.api_name()))}/invoices"
    summary = client.send(url, client.to_payload_rows(sample), progress=False)
    assert summary.accepted == 600
    pipelines.drain()
    counts = reconcile()
    for stage in registry.stores():
        assert counts[stage]["stored"] == counts[stage]["in"] == 600, (stage, counts[stage])
    batch.drop_bytes("extra.jsonl", json.dumps({"InvoiceNo": "990001", "StockCode": "X1", "Quantity": 1,
                                                "InvoiceDate": "2011-06-01T10:00:00", "UnitPrice": 2.5,
                                                "Country": "France", "RowId": "stack-1"}).encode() + b"\n")
    [fired] = batch.run_now()
    assert fired["ok"] and batch.files()["processed"] == ["extra.jsonl"]
    assert "stack-1" in dynamodb.line_ids()
    assert int(wh.sql("SELECT COUNT(*) AS n FROM firehose_transactions")["n"][0]) == 601
    infra.delete_stack()
    assert teardown.inventory() == {}


def test_the_packaged_template_names_each_zip_by_its_content(clean):
    text = infra.package()
    for function in infra.FUNCTIONS:
        key = infra.code_key(function, deploy.package(function))
        assert f"S3Key: {key}}}" in text and f"lambda/{function}.zip" not in text
        assert aws.client("s3").head_object(Bucket=infra.code_bucket(), Key=key)["ContentLength"] > 0


def test_a_code_change_reaches_the_function_on_a_stack_update(clean, monkeypatch):
    """Same S3 key, same property: CloudFormation would leave the old code. Content-addressed
    keys make changed code a changed property, so the update reaches the function."""
    import base64
    import hashlib
    import io
    import zipfile

    infra.deploy_stack()
    lam, name = aws.client("lambda"), deploy.function_name("invoice_api")
    before = lam.get_function(FunctionName=name)["Configuration"]["CodeSha256"]
    original = deploy.package

    def changed(function: str) -> bytes:
        code = original(function)
        if function != "invoice_api":
            return code
        buffer = io.BytesIO(code)
        with zipfile.ZipFile(buffer, "a") as archive:
            # a fixed date: the same bytes whenever it is built (the name alone stamps the current second)
            archive.writestr(zipfile.ZipInfo("CHANGED.txt", date_time=(2020, 1, 1, 0, 0, 0)), "a new version")
        return buffer.getvalue()

    monkeypatch.setattr(deploy, "package", changed)
    infra.deploy_stack()
    assert infra.stack_status() == "UPDATE_COMPLETE"
    after = lam.get_function(FunctionName=name)["Configuration"]["CodeSha256"]
    assert after != before
    assert after == base64.b64encode(hashlib.sha256(changed("invoice_api")).digest()).decode()
    other = deploy.function_name("ingest_api")
    assert lam.get_function(FunctionName=other)["Configuration"]["CodeSha256"] == base64.b64encode(
        hashlib.sha256(original("ingest_api")).digest()).decode()
    infra.delete_stack()


def test_the_template_reserves_no_concurrency_and_states_the_clusters_deletion_policy():
    text = infra.TEMPLATE.read_text()
    assert "ReservedConcurrentExecutions" not in text
    warehouse = text.split("\n  Warehouse:\n", 1)[1].split("\n  FirehoseRole:", 1)[0]
    assert "DeletionPolicy: Delete" in warehouse and "UpdateReplacePolicy: Delete" in warehouse
    assert text.count(f"Runtime: {registry.LAMBDA_RUNTIME}\n") == len(infra.FUNCTIONS)


def test_the_aws_cli_deploys_the_packaged_template(clean, tmp_path):
    """The README's path: package, `aws cloudformation deploy` (change sets), finish."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from ecomlib.pipelines import warehouse

    packaged = tmp_path / "packaged.yaml"
    step = subprocess.run([sys.executable, "-m", "ecomlib.infra", "package", str(packaged)],
                          capture_output=True, text=True, timeout=300)
    assert step.returncode == 0, step.stderr
    keys = aws.local_credentials()  # the embedded AWS answers only its own credentials
    env = {**os.environ, "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
           "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"], "AWS_DEFAULT_REGION": aws.region()}
    env.pop("AWS_SESSION_TOKEN", None)
    deployed = subprocess.run(
        [str(Path(sys.executable).with_name("aws")), "--endpoint-url", aws.endpoint_url(), "cloudformation", "deploy",
         "--template-file", str(packaged), "--stack-name", infra.stack_name(), "--capabilities", "CAPABILITY_NAMED_IAM",
         "--parameter-overrides", f"VpcId={infra.default_vpc()}", f"CodeBucket={infra.code_bucket()}"],
        capture_output=True, text=True, env=env, timeout=600)
    assert deployed.returncode == 0, deployed.stderr
    assert infra.stack_status() == "CREATE_COMPLETE"
    step = subprocess.run([sys.executable, "-m", "ecomlib.infra", "finish"], capture_output=True, text=True, timeout=300)
    assert step.returncode == 0, step.stderr
    assert aws.client("s3").head_object(Bucket=warehouse.bucket_name(), Key="config/jsonpaths.json")
    infra.delete_stack()
