"""The whole stack as code: ``infra/template.yaml``, deployed with CloudFormation.

The notebooks build each pipeline step by step, one boto3 call at a time, to show what
each piece is. In production the same resources are declared in one template and
created, updated and deleted together as a *stack*. The template declares exactly what
ecomlib creates step by step (a test compares the two, resource by resource).

Three things are not CloudFormation resources, so :func:`deploy_stack` does them around
the stack: it uploads the functions' code first (a stack reads code from S3), and
afterwards uploads the jsonpaths files and creates the warehouse table (SQL).

On the embedded AWS the stack is created by moto's CloudFormation, with two gaps filled
in ``ecomlib.local.patches`` (the cluster's name and roles, and the Firehose delivery
stream, which moto skips).
"""

from __future__ import annotations

import json
from pathlib import Path

from ecomlib import aws, deploy as dp, registry
from ecomlib.config import resource_name, settings

TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "template.yaml"
FUNCTIONS = [f.folder for f in registry.functions()]


def stack_name() -> str:
    return resource_name("stack")


def code_bucket() -> str:
    """Where the functions' zips wait for CloudFormation (outside the stack, made first)."""
    return resource_name("artifacts", aws.account_id())


def upload_code() -> str:
    """Package every function (as ``deploy.package`` does) to ``lambda/<function>.zip``."""
    bucket = code_bucket()
    dp.ensure_bucket(bucket)
    for function in FUNCTIONS:
        aws.client("s3").put_object(Bucket=bucket, Key=f"lambda/{function}.zip", Body=dp.package(function))
    return bucket


def default_vpc() -> str:
    ec2 = aws.client("ec2")
    return ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]


def deploy_stack(schedule: str = "rate(5 minutes)") -> dict:
    """Create (or update) the stack and finish what CloudFormation cannot do; returns the
    stack's outputs."""
    from ecomlib.pipelines import batch, warehouse

    cfn = aws.client("cloudformation")
    parameters = {"Prefix": settings().prefix, "CodeBucket": upload_code(), "VpcId": default_vpc(),
                  "Schedule": schedule}
    arguments = dict(StackName=stack_name(), TemplateBody=TEMPLATE.read_text(),
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
                     Capabilities=["CAPABILITY_NAMED_IAM"],
                     # CloudFormation gives the stack's tags to every resource of the stack.
                     Tags=dp.tag_list())
    try:
        cfn.describe_stacks(StackName=stack_name())
        cfn.update_stack(**arguments)
        waiter = "stack_update_complete"
    except cfn.exceptions.ClientError as error:
        if "does not exist" not in str(error):
            if "No updates are to be performed" in str(error):
                waiter = None
            else:
                raise
        else:
            cfn.create_stack(**arguments)
            waiter = "stack_create_complete"
    if waiter:
        cfn.get_waiter(waiter).wait(StackName=stack_name(), WaiterConfig={"Delay": 5, "MaxAttempts": 360})
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in cfn.describe_stacks(StackName=stack_name())["Stacks"][0].get("Outputs", [])}

    # Not resources: the jsonpaths files and the table.
    document = json.dumps(warehouse.JSONPATHS, indent=2).encode()
    aws.client("s3").put_object(Bucket=warehouse.bucket_name(), Key="config/jsonpaths.json", Body=document)
    aws.client("s3").put_object(Bucket=batch.bucket_name(), Key=f"{batch.PREFIX}config/jsonpaths.json", Body=document)
    warehouse.create_table()

    return outputs


def lint() -> str:
    """cfn-lint's findings on the template ("" when there are none). cfn-lint is a developer
    tool (requirements-dev.txt): without it, this says so and how to get it, and finds nothing."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec("cfnlint") is None:
        return ("not installed in this environment, the template was not linted (a developer tool: "
                "`./course test` or `pip install -r requirements-dev.txt` installs it)")
    cfn_lint = Path(sys.executable).parent / ("cfn-lint.exe" if os.name == "nt" else "cfn-lint")  # beside Python
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True)
    return (result.stdout + result.stderr).strip() if result.returncode else ""


def stack_status() -> str | None:
    """The stack's status (``CREATE_COMPLETE``...), or None if there is no stack."""
    cfn = aws.client("cloudformation")
    try:
        return cfn.describe_stacks(StackName=stack_name())["Stacks"][0]["StackStatus"]
    except cfn.exceptions.ClientError:
        return None


def delete_stack() -> None:
    """Delete the stack (its buckets emptied first: CloudFormation keeps a non-empty
    bucket) and the code bucket."""
    cfn = aws.client("cloudformation")
    if stack_status() is not None:
        resources = cfn.describe_stack_resources(StackName=stack_name())["StackResources"]
        for resource in resources:
            if resource["ResourceType"] == "AWS::S3::Bucket" and resource.get("PhysicalResourceId"):
                dp.delete_objects(resource["PhysicalResourceId"])
        cfn.delete_stack(StackName=stack_name())
        cfn.get_waiter("stack_delete_complete").wait(StackName=stack_name(),
                                                      WaiterConfig={"Delay": 5, "MaxAttempts": 360})
    dp.empty_and_delete_bucket(code_bucket())

