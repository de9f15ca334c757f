"""Pipeline 5, the warehouse: Kinesis -> Firehose -> S3 -> Redshift COPY -> dashboards.

Firehose reads the course's stream, buffers records into S3 objects, and loads each one
into the ``firehose_transactions`` table with a COPY that maps JSON fields to columns
through a *jsonpaths* file. The warehouse is queried with SQL through the Redshift Data
API (``ecomlib.redshift``).
"""

from __future__ import annotations

import json
import secrets

from ecomlib import aws, deploy as dp, registry
from ecomlib import redshift as wh
from ecomlib.config import resource_name
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


# Firehose connects to a Redshift destination from one published address block per
# region ("Grant Firehose access to an Amazon Redshift destination",
# https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html).
FIREHOSE_CIDRS = {
    "us-east-1": "52.70.63.192/27", "us-east-2": "13.58.135.96/27", "us-west-1": "13.57.135.192/27",
    "us-west-2": "52.89.255.224/27", "ca-central-1": "35.183.92.128/27", "sa-east-1": "18.228.1.128/27",
    "eu-west-1": "52.19.239.192/27", "eu-west-2": "18.130.1.96/27", "eu-west-3": "35.180.1.96/27",
    "eu-central-1": "35.158.127.160/27", "eu-north-1": "13.53.63.224/27", "eu-south-1": "15.161.135.128/27",
    "ap-northeast-1": "13.113.196.224/27", "ap-northeast-2": "13.209.1.64/27", "ap-southeast-1": "13.228.64.192/27",
    "ap-southeast-2": "13.210.67.224/27", "ap-south-1": "13.232.67.32/27", "ap-east-1": "18.162.221.32/27",
    "me-south-1": "15.185.91.0/27",
}
REDSHIFT_PORT = 5439


def security_group_name() -> str:
    return resource_name("warehouse", "sg")


def ensure_security_group() -> str:
    """The cluster's security group in the default VPC: port 5439 from Firehose's address
    block for this region, and nothing else (no rule for the whole VPC, no other port)."""
    ec2 = aws.client("ec2")
    region = aws.region()
    if region not in FIREHOSE_CIDRS:
        raise ValueError(f"no published Firehose address block for {region} in FIREHOSE_CIDRS")
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
        "IpRanges": [{"CidrIp": FIREHOSE_CIDRS[region], "Description": f"Kinesis Data Firehose, {region}"}]}])
    return group


def ensure_cluster(node_type: str = "ra3.large", password: str | None = None, public: bool = False) -> dict:
    """Create the single-node cluster if needed and wait until it is available.

    ``password`` becomes the master user's password (also when the cluster exists), so
    that Firehose, which signs in with it, and the cluster agree. Without one, a new
    cluster gets a random password and an existing cluster keeps its own.

    The cluster sits behind :func:`ensure_security_group`. It is not publicly accessible
    unless ``public=True``: people reach it through the Data API, which needs no open
    port. Firehose, though, connects to the cluster's public endpoint from its published
    addresses, so on a real account the warehouse pipeline needs ``public=True`` (the
    security group still admits only Firehose, on port 5439 only).
    """
    redshift = aws.client("redshift")
    try:
        redshift.create_cluster(
            ClusterIdentifier=wh.cluster_id(), ClusterType="single-node", NodeType=node_type,
            DBName=wh.DATABASE, MasterUsername=wh.DB_USER, MasterUserPassword=password or new_password(),
            PubliclyAccessible=public, Encrypted=True, VpcSecurityGroupIds=[ensure_security_group()],
            Tags=dp.tag_list(),
        )
    except redshift.exceptions.ClusterAlreadyExistsFault:
        if password:
            redshift.modify_cluster(ClusterIdentifier=wh.cluster_id(), MasterUserPassword=password)
    redshift.get_waiter("cluster_available").wait(
        ClusterIdentifier=wh.cluster_id(), WaiterConfig={"Delay": 15, "MaxAttempts": 80})
    return redshift.describe_clusters(ClusterIdentifier=wh.cluster_id())["Clusters"][0]


def new_password() -> str:
    """A fresh random master password: Firehose signs in with it; people use IAM (Data API)."""
    return "A1" + secrets.token_urlsafe(24)


def firehose_policy(stream_arn: str, bucket_arn: str) -> dict:
    """Firehose may read the one stream and write to (and COPY from) its one bucket."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadTheInvoiceStream", "Effect": "Allow",
         "Action": ["kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords",
                    "kinesis:ListShards"],
         "Resource": stream_arn},
        {"Sid": "StageObjectsInTheBucket", "Effect": "Allow",
         "Action": ["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject",
                    "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:PutObject"],
         "Resource": [bucket_arn, f"{bucket_arn}/*"]},
    ]}


def ensure_firehose_role(stream_arn: str, bucket_arn: str) -> str:
    """Firehose's own role (trusting firehose.amazonaws.com) with its inline policy."""
    iam = aws.client("iam")
    role = resource_name("firehose", "role")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    try:
        arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust),
                              Tags=dp.tag_list())["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="least-privilege",
                        PolicyDocument=json.dumps(firehose_policy(stream_arn, bucket_arn)))
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


def ensure_delivery_stream(stream_arn: str, role_arn: str, cluster: dict, password: str,
                           buffer_mb: int = 5, buffer_seconds: int = 60) -> str:
    """Create the Firehose delivery stream (source: the Kinesis stream; destination:
    Redshift through the bucket) if needed; returns its name. A new one is ``CREATING``
    (:func:`deploy` waits until it is ``ACTIVE``); one still ``DELETING`` is waited for."""
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
            "Username": wh.DB_USER,
            "Password": password,
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


def deploy(buffer_mb: int = 5, buffer_seconds: int = 60, public: bool = False) -> str:
    """Cluster, table, bucket, jsonpaths, role and delivery stream; returns the stream's name.

    ``public=True`` makes the cluster reachable by Firehose on a real account (see
    :func:`ensure_cluster`); the embedded AWS delivers either way.
    """
    stream_arn = ingest.ensure_stream()
    password = new_password()  # for Firehose's sign-in; people use IAM through the Data API
    cluster = ensure_cluster(password=password, public=public)
    create_table()
    bucket_arn = dp.ensure_bucket(bucket_name())
    upload_jsonpaths()
    role = ensure_firehose_role(stream_arn, bucket_arn)
    name = dp.retry_while_propagating(  # a new role is not usable at once
        lambda: ensure_delivery_stream(stream_arn, role, cluster, password, buffer_mb, buffer_seconds),
        "creating the delivery stream")
    # CREATING, then ACTIVE: it reads the stream from LATEST once active, so send after this.
    dp.wait_for_delivery_stream(name)
    return name


def row_ids() -> dict[str, int]:
    """How many times each row_id is in the table (1 when all is well)."""
    frame = wh.sql(f"SELECT row_id, COUNT(*) AS n FROM {TABLE} GROUP BY row_id")
    return dict(zip(frame["row_id"], frame["n"])) if len(frame) else {}


def teardown(delete_cluster: bool = True) -> None:
    """Delete the delivery stream, its role and bucket, and (by default) the cluster and
    its security group."""
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
        delete_security_group()


def delete_security_group() -> None:
    """Delete the cluster's security group (once no cluster uses it)."""
    ec2 = aws.client("ec2")
    for group in ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [security_group_name()]}])["SecurityGroups"]:
        dp.wait_for_clusters_using(group["GroupId"])  # a deleting cluster still holds it
        ec2.delete_security_group(GroupId=group["GroupId"])
