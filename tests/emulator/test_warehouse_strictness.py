"""The warehouse as strict as AWS, called with plain boto3 on the embedded AWS: cluster and
delivery stream states, Firehose's network path and sign-in, COPY's role (no course code
in the calls under test; course helpers only set the scene)."""

from __future__ import annotations

import json

import pytest

from ecomlib.local import server
from ecomlib import aws, deploy as dp, pipelines
from ecomlib import redshift as wh
from ecomlib.pipelines import ingest, warehouse

ROW = {"InvoiceNo": "900001", "StockCode": "52001", "Description": "MUG", "Quantity": 1,
       "InvoiceDate": "2011-05-01T10:00:00", "UnitPrice": 1.5, "CustomerID": None,
       "Country": "France", "RowId": "r-1"}


@pytest.fixture
def clean():
    warehouse.teardown()
    ingest.teardown()
    yield
    warehouse.teardown()
    ingest.teardown()


def _available(**overrides) -> dict:
    """A cluster made with plain create_cluster (the course's settings unless overridden), once available."""
    redshift = aws.client("redshift")
    arguments = dict(ClusterIdentifier=wh.cluster_id(), ClusterType="single-node", NodeType="ra3.large",
                     DBName="dev", MasterUsername="awsuser", ManageMasterPassword=True, PubliclyAccessible=True,
                     VpcSecurityGroupIds=[warehouse.ensure_security_group()])
    arguments.update(overrides)
    redshift.create_cluster(**arguments)
    return warehouse.wait_for_cluster(timeout=60)


def _deliver(cluster: dict, **destination) -> list[dict]:
    """A delivery stream into ``cluster``; one record through it; the error manifests it left."""
    stream_arn = ingest.ensure_stream()
    wh.execute(warehouse.TABLE_DDL)
    bucket_arn = dp.ensure_bucket(warehouse.bucket_name())
    warehouse.upload_jsonpaths()
    role = warehouse.ensure_firehose_role(stream_arn, bucket_arn, cluster.get("MasterPasswordSecretArn", "arn:none"))
    firehose = aws.client("firehose")
    config = {"RoleARN": role, "ClusterJDBCURL": warehouse.jdbc_url(cluster),
              "CopyCommand": {"DataTableName": warehouse.TABLE, "DataTableColumns": ",".join(warehouse.COLUMNS),
                              "CopyOptions": warehouse.copy_options()},
              "S3Configuration": {"RoleARN": role, "BucketARN": bucket_arn, "Prefix": warehouse.PREFIX}}
    config.update(destination or {"SecretsManagerConfiguration": {
        "Enabled": True, "RoleARN": role, "SecretARN": cluster["MasterPasswordSecretArn"]}})
    firehose.create_delivery_stream(DeliveryStreamName=warehouse.delivery_stream_name(),
                                    DeliveryStreamType="KinesisStreamAsSource",
                                    KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": role},
                                    RedshiftDestinationConfiguration=config)
    warehouse.wait_for_delivery_stream(timeout=60)
    aws.client("kinesis").put_record(StreamName=ingest.stream_name(), PartitionKey="1",
                                     Data=json.dumps(ROW).encode() + b"\n")
    for _ in range(4):
        pipelines.drain()
    s3 = aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=warehouse.bucket_name()).get("Contents", [])]
    return [json.loads(s3.get_object(Bucket=warehouse.bucket_name(), Key=k)["Body"].read())
            for k in keys if k.startswith(f"{warehouse.PREFIX}errors/")]


def _rows() -> int:
    return int(wh.sql(f"SELECT COUNT(*) AS n FROM {warehouse.TABLE}")["n"][0])


# ---- Redshift ----------------------------------------------------------------------------

def test_a_new_cluster_is_creating_then_available(clean):
    redshift = aws.client("redshift")
    created = redshift.create_cluster(ClusterIdentifier=wh.cluster_id(), ClusterType="single-node",
                                      NodeType="ra3.large", MasterUsername="awsuser", ManageMasterPassword=True)
    assert created["Cluster"]["ClusterStatus"] == "creating"
    assert redshift.describe_clusters(ClusterIdentifier=wh.cluster_id())["Clusters"][0]["ClusterStatus"] == "creating"
    assert warehouse.wait_for_cluster(timeout=60)["ClusterStatus"] == "available"


def test_a_managed_master_password_lives_in_secrets_manager_and_goes_with_the_cluster(clean):
    cluster = _available()
    secrets = aws.client("secretsmanager")
    value = json.loads(secrets.get_secret_value(SecretId=cluster["MasterPasswordSecretArn"])["SecretString"])
    assert value["username"] == "awsuser" and len(value["password"]) >= 16
    aws.client("redshift").delete_cluster(ClusterIdentifier=wh.cluster_id(), SkipFinalClusterSnapshot=True)
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        secrets.get_secret_value(SecretId=cluster["MasterPasswordSecretArn"])


def _copy_error(sql: str) -> str:
    with pytest.raises(wh.StatementError) as refused:
        wh.execute(sql)
    return str(refused.value)


def test_copy_needs_a_role_attached_to_the_cluster_and_trusting_redshift(clean):
    iam = aws.client("iam")
    bucket = warehouse.bucket_name()
    dp.ensure_bucket(bucket)
    warehouse.upload_jsonpaths()
    aws.client("s3").put_object(Bucket=bucket, Key="firehose/one.json", Body=json.dumps(ROW).encode())
    lambda_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                             "Principal": {"Service": "lambda.amazonaws.com"}}]}
    untrusting = iam.create_role(RoleName="ecom-test-not-redshift", AssumeRolePolicyDocument=json.dumps(lambda_trust))
    good = warehouse.ensure_cluster_role()
    try:
        _available(IamRoles=[untrusting["Role"]["Arn"]])
        wh.execute(warehouse.TABLE_DDL)
        copy = f"COPY {warehouse.TABLE} FROM 's3://{bucket}/firehose/' {warehouse.copy_options()} "
        user = f"User arn:aws:redshift:{aws.region()}:{aws.account_id()}:dbuser:{wh.cluster_id()}/awsuser"
        # not attached to the cluster
        assert _copy_error(copy + f"IAM_ROLE '{good}'") == (
            f"ERROR: {user} is not authorized to assume IAM Role {good}")
        assert _copy_error(copy + f"CREDENTIALS 'aws_iam_role={good}'").endswith(f"assume IAM Role {good}")
        # attached, but trusting Lambda, not Redshift
        other = untrusting["Role"]["Arn"]
        assert _copy_error(copy + f"IAM_ROLE '{other}'") == f"ERROR: {user} is not authorized to assume IAM Role {other}"
        # no default role
        assert _copy_error(copy + "IAM_ROLE default") == "ERROR: Cannot find default IAM role"
        # attached, trusting Redshift, and the default: COPY runs
        aws.client("redshift").modify_cluster_iam_roles(ClusterIdentifier=wh.cluster_id(), AddIamRoles=[good],
                                                        DefaultIamRoleArn=good)
        assert wh.execute(copy + "IAM_ROLE default")["Status"] == "FINISHED"
        assert wh.execute(copy + f"IAM_ROLE '{good}'")["Status"] == "FINISHED"
    finally:
        iam.delete_role(RoleName="ecom-test-not-redshift")


# ---- Firehose ----------------------------------------------------------------------------

def test_a_new_delivery_stream_is_creating_then_reads_from_latest_once_active(clean):
    cluster = _available()
    stream_arn = ingest.ensure_stream()
    bucket_arn = dp.ensure_bucket(warehouse.bucket_name())
    warehouse.upload_jsonpaths()
    wh.execute(warehouse.TABLE_DDL)
    role = warehouse.ensure_firehose_role(stream_arn, bucket_arn, cluster["MasterPasswordSecretArn"])
    firehose, kinesis = aws.client("firehose"), aws.client("kinesis")
    firehose.create_delivery_stream(
        DeliveryStreamName=warehouse.delivery_stream_name(), DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": role},
        RedshiftDestinationConfiguration={
            "RoleARN": role, "ClusterJDBCURL": warehouse.jdbc_url(cluster),
            "CopyCommand": {"DataTableName": warehouse.TABLE, "DataTableColumns": ",".join(warehouse.COLUMNS),
                            "CopyOptions": warehouse.copy_options()},
            "SecretsManagerConfiguration": {"Enabled": True, "RoleARN": role,
                                            "SecretARN": cluster["MasterPasswordSecretArn"]},
            "S3Configuration": {"RoleARN": role, "BucketARN": bucket_arn, "Prefix": warehouse.PREFIX}})
    described = firehose.describe_delivery_stream(DeliveryStreamName=warehouse.delivery_stream_name())
    assert described["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "CREATING"
    assert "Password" not in described["DeliveryStreamDescription"]["Destinations"][0][
        "RedshiftDestinationDescription"]
    kinesis.put_record(StreamName=ingest.stream_name(), PartitionKey="1",
                       Data=json.dumps({**ROW, "RowId": "before"}).encode() + b"\n")
    warehouse.wait_for_delivery_stream(timeout=60)
    kinesis.put_record(StreamName=ingest.stream_name(), PartitionKey="1",
                       Data=json.dumps({**ROW, "RowId": "after"}).encode() + b"\n")
    # The embedded AWS's own drain: pipelines.drain() would wait for "before" too (it counts
    # from the stream's creation), which a delivery stream never reads while CREATING.
    server.drain()
    assert list(wh.sql(f"SELECT row_id FROM {warehouse.TABLE}")["row_id"]) == ["after"]


def test_firehose_cannot_reach_a_cluster_that_is_not_publicly_accessible(clean):
    errors = _deliver(_available(PubliclyAccessible=False))
    assert [e["errorCode"] for e in errors] == ["Redshift.ConnectionFailed"]
    assert errors[0]["error"].startswith("The connection to the specified Amazon Redshift cluster failed.")
    assert _rows() == 0


def test_firehose_cannot_reach_a_cluster_whose_group_does_not_admit_its_block(clean):
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName="ecom-test-wrong-block", VpcId=vpc, Description="wrong")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5439, "ToPort": 5439, "IpRanges": [{"CidrIp": "203.0.113.0/24"}]}])
    try:
        errors = _deliver(_available(VpcSecurityGroupIds=[group]))
        assert [e["errorCode"] for e in errors] == ["Redshift.ConnectionFailed"] and _rows() == 0
    finally:
        aws.client("redshift").delete_cluster(ClusterIdentifier=wh.cluster_id(), SkipFinalClusterSnapshot=True)
        ec2.delete_security_group(GroupId=group)


def test_firehose_with_a_wrong_password_fails_authentication(clean):
    errors = _deliver(_available(), Username="awsuser", Password="NotThePassword1")
    assert [e["errorCode"] for e in errors] == ["Redshift.AuthenticationFailed"]
    assert errors[0]["error"] == ("The provided user name and password failed authentication. "
                                  "Provide a valid user name and password.")
    assert _rows() == 0


def test_firehose_signs_in_with_the_managed_secret_and_loads(clean):
    assert _deliver(_available()) == [] and _rows() == 1


# ---- the course's own choices --------------------------------------------------------------

def test_every_region_firehose_serves_has_its_block():
    assert len(warehouse.FIREHOSE_CIDRS) == 37
    assert warehouse.firehose_cidr("ap-southeast-3") == "108.136.221.64/27"
    with pytest.raises(ValueError, match="controlling-access"):
        warehouse.firehose_cidr("xx-nowhere-1")


def test_the_course_cluster_is_public_behind_firehose_only_with_a_managed_password_and_a_default_role(clean):
    cluster = warehouse.ensure_cluster()
    assert cluster["PubliclyAccessible"] is True and cluster["MasterPasswordSecretArn"]
    assert cluster["DefaultIamRoleArn"].endswith(f"role/{warehouse.cluster_role_name()}")
    assert [r["IamRoleArn"] for r in cluster["IamRoles"]] == [cluster["DefaultIamRoleArn"]]


def test_a_cluster_made_with_a_password_is_switched_to_a_managed_one(clean):
    redshift = aws.client("redshift")
    redshift.create_cluster(ClusterIdentifier=wh.cluster_id(), ClusterType="single-node", NodeType="ra3.large",
                            MasterUsername="awsuser", MasterUserPassword="An0ldPassword",
                            VpcSecurityGroupIds=[warehouse.ensure_security_group()], PubliclyAccessible=True)
    cluster = warehouse.ensure_cluster()
    value = json.loads(aws.client("secretsmanager").get_secret_value(
        SecretId=cluster["MasterPasswordSecretArn"])["SecretString"])
    assert value["password"] != "An0ldPassword"
    assert _deliver(cluster) == [] and _rows() == 1  # Firehose signs in with the cluster's current password
