"""Address blocks AWS publishes, for security group rules: Firehose's, per region.

No imports from ecomlib: the course (``pipelines.warehouse``) and the embedded AWS
(``local.firehose``, which checks a cluster's rules against them) read the same table.
"""

from __future__ import annotations

# Firehose connects to a provisioned cluster (or a Serverless workgroup) from one published
# address block per region: the cluster must be publicly accessible, and its security
# group must admit that block on the cluster's port. "Grant Firehose access to an Amazon
# Redshift destination", VPC access (https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html),
# every region of its table. infra/template.yaml has the same table (a test checks they agree).
FIREHOSE_CIDRS = {
    "us-east-1": "52.70.63.192/27", "us-east-2": "13.58.135.96/27", "us-west-1": "13.57.135.192/27",
    "us-west-2": "52.89.255.224/27", "us-gov-east-1": "18.253.138.96/27", "us-gov-west-1": "52.61.204.160/27",
    "ca-central-1": "35.183.92.128/27", "ca-west-1": "40.176.98.192/27", "mx-central-1": "78.12.207.32/27",
    "sa-east-1": "18.228.1.128/27",
    "ap-east-1": "18.162.221.32/27", "ap-east-2": "43.212.53.160/27", "ap-south-1": "13.232.67.32/27",
    "ap-south-2": "18.60.192.128/27", "ap-northeast-1": "13.113.196.224/27", "ap-northeast-2": "13.209.1.64/27",
    "ap-northeast-3": "13.208.177.192/27", "ap-southeast-1": "13.228.64.192/27",
    "ap-southeast-2": "13.210.67.224/27", "ap-southeast-3": "108.136.221.64/27",
    "ap-southeast-4": "16.50.161.128/27", "ap-southeast-5": "43.216.58.0/27", "ap-southeast-7": "43.208.112.96/27",
    "cn-north-1": "52.81.151.32/27", "cn-northwest-1": "161.189.23.64/27",
    "eu-central-1": "35.158.127.160/27", "eu-central-2": "16.62.183.32/27", "eu-west-1": "52.19.239.192/27",
    "eu-west-2": "18.130.1.96/27", "eu-west-3": "35.180.1.96/27", "eu-north-1": "13.53.63.224/27",
    "eu-south-1": "15.161.135.128/27", "eu-south-2": "18.100.71.96/27",
    "me-south-1": "15.185.91.0/27", "me-central-1": "3.28.159.32/27", "il-central-1": "51.16.102.0/27",
    "af-south-1": "13.244.121.224/27",
}
def firehose_cidr(region: str) -> str:
    """Firehose's address block in ``region`` (the one its Redshift connections come from)."""
    try:
        return FIREHOSE_CIDRS[region]
    except KeyError:
        raise ValueError(
            f"Firehose publishes no address block for {region}: check the table in "
            "https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html "
            "(Redshift destination, VPC access) and add it to FIREHOSE_CIDRS") from None
