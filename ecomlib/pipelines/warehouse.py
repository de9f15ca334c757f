"""Pipeline 5, the warehouse: Kinesis -> Firehose -> S3 -> Redshift COPY -> dashboards.

Firehose reads the course's stream, buffers records into S3 objects, and loads each one
into the ``firehose_transactions`` table with a COPY that maps JSON fields to columns
through a *jsonpaths* file. The warehouse is queried with SQL through the Redshift Data
API (``ecomlib.redshift``).
"""

from __future__ import annotations

import json
from collections import Counter

from ecomlib import aws, deploy as dp, registry
from ecomlib import redshift as wh
from ecomlib.config import resource_name
from ecomlib.network import FIREHOSE_CIDRS, firehose_cidr  # noqa: F401  (the course reads them here)
from ecomlib.pipelines import ingest

PIPELINE = registry.get("warehouse")
TABLE = "firehose_transactions"
PREFIX = "firehose/"

# Redshift types for the rows the ingest function puts on the stream. unit_price is
# DECIMAL(10,3): money is exact, and the data has prices with up to 3 decimals.
# row_id is the line's identity (for deduplication and reconciliation).
TABLE_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    invoice_no   VARCHAR(20)   NOT NULL,
    stock_code   VARCHAR(20)   NOT NULL,
    description  VARCHAR(256),
    quantity     INTEGER       NOT NULL,
    invoice_date TIMESTAMP     NOT NULL,
    unit_price   DECIMAL(10,3) NOT NULL,
    customer_id  VARCHAR(20),
    country      VARCHAR(64)   NOT NULL,
    row_id       VARCHAR(64)   NOT NULL
)
DISTSTYLE AUTO
SORTKEY (invoice_date)
""".strip()

COLUMNS = ["invoice_no", "stock_code", "description", "quantity", "invoice_date",
           "unit_price", "customer_id", "country", "row_id"]
# Column i is loaded from JSON path i of each row the ingest function wrote.
JSONPATHS = {"jsonpaths": [f"$['{field}']" for field in (
    "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
    "UnitPrice", "CustomerID", "Country", "RowId")]}


def bucket_name() -> str:
    """Firehose's intermediate bucket (S3 names are global: the account id keeps it unique)."""
    return resource_name("firehose", aws.account_id())


def delivery_stream_name() -> str:
    return resource_name("to-warehouse")


def jsonpaths_url() -> str:
    return f"s3://{bucket_name()}/config/jsonpaths.json"


def copy_options() -> str:
    """What Firehose appends to its COPY: how to read the objects."""
    return (f"JSON '{jsonpaths_url()}' TIMEFORMAT 'auto' "
            "TRUNCATECOLUMNS BLANKSASNULL EMPTYASNULL")


REDSHIFT_PORT = 5439


def security_group_name() -> str:
    return resource_name("warehouse", "sg")


def ensure_security_group() -> str:
    """The cluster's security group in the default VPC: port 5439 from Firehose's address
    block for this region, and nothing else (no rule for the whole VPC, no other port)."""
    ec2 = aws.client("ec2")
    region = aws.region()
    cidr = firehose_cidr(region)
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [security_group_name()]}])
    if found["SecurityGroups"]:
        return found["SecurityGroups"][0]["GroupId"]
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName=security_group_name(), VpcId=vpc,
                                      Description="Redshift: port 5439 from Kinesis Data Firehose only",
                                      TagSpecifications=[{"ResourceType": "security-group",
                                                          "Tags": dp.tag_list()}])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": REDSHIFT_PORT, "ToPort": REDSHIFT_PORT,
        "IpRanges": [{"CidrIp": cidr, "Description": f"Kinesis Data Firehose, {region}"}]}])
    return group


def cluster_role_name() -> str:
    """The role the cluster itself assumes to read the Firehose bucket in a COPY."""
    return resource_name("warehouse", "role")


def cluster_role_policy(bucket_arn: str) -> dict:
    """Read the Firehose bucket (the staged objects, their manifests, the jsonpaths file), nothing else."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadTheFirehoseBucket", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": f"{bucket_arn}/*"},
        {"Sid": "ListTheFirehoseBucket", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": bucket_arn},
    ]}


def ensure_cluster_role() -> str:
    """The cluster's default role (trusting redshift.amazonaws.com): what ``IAM_ROLE default``
    in a COPY means. The bucket need not exist yet: the policy names it."""
    return _service_role(cluster_role_name(), "redshift.amazonaws.com",
                         cluster_role_policy(f"arn:aws:s3:::{bucket_name()}"))


def ensure_cluster(node_type: str = "ra3.large", wait: bool = True) -> dict:
    """Create the single-node cluster if needed and (by default) wait until it is available.

    - Publicly accessible, behind :func:`ensure_security_group`: Firehose loads a
      provisioned cluster only through its public endpoint, from its published address
      block; the group admits that block on port 5439 and nothing else.
    - ``ManageMasterPassword``: Redshift makes the admin password and keeps it in a
      Secrets Manager secret (``MasterPasswordSecretArn``) that Firehose reads. Nobody sees
      it, and a re-deploy cannot leave Firehose with an old one. People use IAM (Data API).
    - Its default IAM role (:func:`ensure_cluster_role`) reads the Firehose bucket:
      ``COPY ... IAM_ROLE default``. An existing cluster gets the role attached if needed.
    """
    redshift = aws.client("redshift")
    role = ensure_cluster_role()
    try:
        redshift.create_cluster(
            ClusterIdentifier=wh.cluster_id(), ClusterType="single-node", NodeType=node_type,
            DBName=wh.DATABASE, MasterUsername=wh.DB_USER, ManageMasterPassword=True,
            PubliclyAccessible=True, Encrypted=True, VpcSecurityGroupIds=[ensure_security_group()],
            IamRoles=[role], DefaultIamRoleArn=role,
            Tags=dp.tag_list(),
        )
    except redshift.exceptions.ClusterAlreadyExistsFault:
        existing = wait_for_cluster()
        if "MasterPasswordSecretArn" not in existing:  # made with a password of its own: Redshift keeps it now
            redshift.modify_cluster(ClusterIdentifier=wh.cluster_id(), ManageMasterPassword=True)
        if existing.get("DefaultIamRoleArn") != role:
            redshift.modify_cluster_iam_roles(ClusterIdentifier=wh.cluster_id(), AddIamRoles=[role],
                                              DefaultIamRoleArn=role)
    return wait_for_cluster() if wait else describe_cluster()


def describe_cluster() -> dict:
    return aws.client("redshift").describe_clusters(ClusterIdentifier=wh.cluster_id())["Clusters"][0]


def wait_for_cluster(timeout: float = 1800) -> dict:
    """Wait until the cluster is ``available`` (on AWS: minutes after create_cluster)."""
    return dp.wait_until(describe_cluster, lambda c: c["ClusterStatus"] == "available", timeout,
                         f"cluster {wh.cluster_id()}")


def firehose_policy(stream_arn: str, bucket_arn: str, secret_arn: str) -> dict:
    """Firehose may read the one stream, write to its one bucket, and read the cluster's
    admin secret (to sign in and run its COPY)."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadTheInvoiceStream", "Effect": "Allow",
         "Action": ["kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords",
                    "kinesis:ListShards"],
         "Resource": stream_arn},
        {"Sid": "StageObjectsInTheBucket", "Effect": "Allow",
         "Action": ["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject",
                    "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:PutObject"],
         "Resource": [bucket_arn, f"{bucket_arn}/*"]},
        {"Sid": "ReadTheWarehouseSecret", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
         "Resource": secret_arn},
    ]}


def ensure_firehose_role(stream_arn: str, bucket_arn: str, secret_arn: str) -> str:
    """Firehose's own role (trusting firehose.amazonaws.com) with its inline policy."""
    return _service_role(resource_name("firehose", "role"), "firehose.amazonaws.com",
                         firehose_policy(stream_arn, bucket_arn, secret_arn))


def _service_role(role: str, service: str, policy: dict) -> str:
    """A role that ``service`` may assume, tagged, with ``policy`` inline; returns its ARN."""
    iam = aws.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
    try:
        arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust),
                              Tags=dp.tag_list())["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="least-privilege", PolicyDocument=json.dumps(policy))
    return arn


def create_table() -> None:
    """Create ``firehose_transactions`` (Redshift SQL, through the Data API)."""
    wh.execute(TABLE_DDL)


def upload_jsonpaths() -> str:
    """Put the jsonpaths file where the COPY options point; returns its s3:// URL."""
    aws.client("s3").put_object(Bucket=bucket_name(), Key="config/jsonpaths.json",
                                Body=json.dumps(JSONPATHS, indent=2).encode(),
                                ContentType="application/json")
    return jsonpaths_url()


def jdbc_url(cluster: dict) -> str:
    endpoint = cluster["Endpoint"]
    return f"jdbc:redshift://{endpoint['Address']}:{endpoint['Port']}/{wh.DATABASE}"


def ensure_delivery_stream(stream_arn: str, role_arn: str, cluster: dict,
                           buffer_mb: int = 5, buffer_seconds: int = 60) -> str:
    """Create the Firehose delivery stream (source: the Kinesis stream; destination:
    Redshift through the bucket) if needed; returns its name. A new one is ``CREATING``
    (:func:`deploy` waits until it is ``ACTIVE``); one still ``DELETING`` is waited for.

    Firehose signs in with the cluster's admin secret (``SecretsManagerConfiguration``):
    no password in the configuration, and always the cluster's current one.
    """
    firehose = aws.client("firehose")
    name = delivery_stream_name()
    if dp.delivery_stream_status(name) == "DELETING":
        dp.wait_for_delivery_stream(name, "DELETED")  # deletion is asynchronous
    if dp.delivery_stream_status(name) != "DELETED":
        dp.wait_for_delivery_stream(name, "ACTIVE")
        return name
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": role_arn},
        RedshiftDestinationConfiguration={
            "RoleARN": role_arn,
            "ClusterJDBCURL": jdbc_url(cluster),
            "CopyCommand": {"DataTableName": TABLE, "DataTableColumns": ",".join(COLUMNS),
                            "CopyOptions": copy_options()},
            "SecretsManagerConfiguration": {"Enabled": True, "RoleARN": role_arn,
                                            "SecretARN": cluster["MasterPasswordSecretArn"]},
            "RetryOptions": {"DurationInSeconds": 600},
            "S3Configuration": {
                "RoleARN": role_arn,
                "BucketARN": f"arn:aws:s3:::{bucket_name()}",
                "Prefix": PREFIX,
                "BufferingHints": {"SizeInMBs": buffer_mb, "IntervalInSeconds": buffer_seconds},
                "CompressionFormat": "UNCOMPRESSED",
            },
        },
        Tags=dp.tag_list(),
    )
    return name


def wait_for_delivery_stream(timeout: float = 600) -> str:
    """Wait until the delivery stream is ACTIVE: only then does it read the stream (from LATEST)."""
    return dp.wait_for_delivery_stream(delivery_stream_name(), "ACTIVE", timeout)


def deploy(buffer_mb: int = 5, buffer_seconds: int = 60) -> str:
    """Cluster, table, bucket, jsonpaths, roles and delivery stream; returns the stream's name.

    The cluster is created first and waited for last: its minutes on AWS overlap the rest.
    """
    stream_arn = ingest.ensure_stream()
    ensure_cluster(wait=False)
    bucket_arn = dp.ensure_bucket(bucket_name())
    upload_jsonpaths()
    cluster = wait_for_cluster()
    role = ensure_firehose_role(stream_arn, bucket_arn, cluster["MasterPasswordSecretArn"])
    create_table()
    name = dp.retry_while_propagating(  # a new role is not usable at once
        lambda: ensure_delivery_stream(stream_arn, role, cluster, buffer_mb, buffer_seconds),
        "creating the delivery stream")
    # CREATING, then ACTIVE: it reads the stream from LATEST once active, so send after this.
    dp.wait_for_delivery_stream(name)
    return name


def row_ids() -> dict[str, int]:
    """How many times each row_id is in the table (1 when all is well). (One column comes
    back faster than two: the Data API sends every field as a small JSON object.)"""
    return Counter(wh.first_column(f"SELECT row_id FROM {TABLE}"))  # page by page


def teardown(delete_cluster: bool = True) -> None:
    """Delete the delivery stream, its role and bucket, and (by default) the cluster (and
    with it the admin secret Redshift manages), its role and its security group."""
    dp.delete_delivery_stream(delivery_stream_name())  # waits until it is gone (asynchronous on AWS)
    dp.delete_role(resource_name("firehose", "role"))
    dp.empty_and_delete_bucket(bucket_name())
    if delete_cluster:
        redshift = aws.client("redshift")
        try:
            redshift.delete_cluster(ClusterIdentifier=wh.cluster_id(), SkipFinalClusterSnapshot=True)
            redshift.get_waiter("cluster_deleted").wait(
                ClusterIdentifier=wh.cluster_id(), WaiterConfig={"Delay": 15, "MaxAttempts": 80})
        except redshift.exceptions.ClusterNotFoundFault:
            pass
        dp.delete_role(cluster_role_name())
        delete_security_group()


def delete_security_group() -> None:
    """Delete the cluster's security group (once no cluster uses it)."""
    ec2 = aws.client("ec2")
    for group in ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [security_group_name()]}])["SecurityGroups"]:
        dp.wait_for_clusters_using(group["GroupId"])  # a deleting cluster still holds it
        ec2.delete_security_group(GroupId=group["GroupId"])
