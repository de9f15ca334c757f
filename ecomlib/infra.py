"""The whole stack as code: ``infra/template.yaml``, deployed with CloudFormation.

The notebooks build each pipeline step by step, one boto3 call at a time, to show what
each piece is. In production the same resources are declared in one template and
created, updated and deleted together as a *stack*. The template declares exactly what
ecomlib creates step by step (a test compares the two, resource by resource).

Three things are not CloudFormation resources, so :func:`deploy_stack` does them around
the stack: it *packages* the template first, as ``aws cloudformation package`` does
(:func:`package`: each function's zip uploaded under a key named by its content, and the
template's ``S3Key`` pointing at it, so changed code is a changed property and reaches
the function on a stack update; an unchanged key would leave the old code in place), and
afterwards uploads the jsonpaths files and creates the warehouse table (SQL).
With the AWS CLI the same is::

    python -m ecomlib.infra package build/packaged.yaml   # zips uploaded, template rewritten
    aws cloudformation deploy --template-file build/packaged.yaml --stack-name ecom-stack \
        --capabilities CAPABILITY_NAMED_IAM --parameter-overrides VpcId=<vpc> ...
    python -m ecomlib.infra finish                         # jsonpaths files + warehouse table

On the embedded AWS the stack is created by moto's CloudFormation, with two gaps filled
in ``ecomlib.local.patches`` (the cluster's name and roles, and the Firehose delivery
stream, which moto skips).
"""

from __future__ import annotations

import hashlib
import json
import sys
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


def code_key(function: str, code: bytes) -> str:
    """Where a function's zip waits for CloudFormation: named by its content (SHA-256)."""
    return f"lambda/{function}/{hashlib.sha256(code).hexdigest()}.zip"


def upload_code() -> dict[str, str]:
    """Package every function (as ``deploy.package`` does) to its content-addressed key in the
    code bucket (made first, outside the stack); returns {function: key}."""
    bucket = code_bucket()
    dp.ensure_bucket(bucket)
    keys = {}
    for function in FUNCTIONS:
        code = dp.package(function)
        keys[function] = code_key(function, code)
        aws.client("s3").put_object(Bucket=bucket, Key=keys[function], Body=code)
    return keys


def package(output: str | Path | None = None) -> str:
    """The template with each function's ``S3Key`` set to its uploaded, content-addressed zip
    (what ``aws cloudformation package`` makes); written to ``output`` if given."""
    text = TEMPLATE.read_text()
    for function, key in upload_code().items():
        placeholder = f"S3Key: lambda/{function}.zip"
        if placeholder not in text:
            raise ValueError(f"{TEMPLATE.name}: no '{placeholder}' for function {function}")
        text = text.replace(placeholder, f"S3Key: {key}")
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text)
    return text


def default_vpc() -> str:
    ec2 = aws.client("ec2")
    return ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]


def deploy_stack(schedule: str = "rate(5 minutes)") -> dict:
    """Create (or update) the stack and finish what CloudFormation cannot do; returns the
    stack's outputs."""
    from ecomlib.pipelines import warehouse

    cfn = aws.client("cloudformation")
    template = package()
    parameters = {"Prefix": settings().prefix, "CodeBucket": code_bucket(), "VpcId": default_vpc(),
                  "Schedule": schedule}
    arguments = dict(StackName=stack_name(), TemplateBody=template,
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
            _create_stack(cfn, arguments)
            waiter = "stack_create_complete"
    if waiter:
        cfn.get_waiter(waiter).wait(StackName=stack_name(), WaiterConfig={"Delay": 5, "MaxAttempts": 360})
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in cfn.describe_stacks(StackName=stack_name())["Stacks"][0].get("Outputs", [])}
    finish()
    return outputs


def _create_stack(cfn, arguments: dict) -> None:
    """CreateStack. SQS refuses a queue name deleted less than 60 s ago (a teardown just
    before): the stack fails (on AWS it rolls back). Then delete what it made, and try again
    until the names are free."""
    def attempt() -> bool:
        try:
            cfn.create_stack(**arguments)
            return True
        except cfn.exceptions.ClientError as error:
            if "QueueDeletedRecently" not in str(error):
                raise
        cfn.delete_stack(StackName=arguments["StackName"])
        cfn.get_waiter("stack_delete_complete").wait(StackName=arguments["StackName"],
                                                     WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        return False

    dp.wait_until(attempt, True, 180, "creating the stack (a queue of the same name was deleted less than 60 s ago)")


def finish() -> None:
    """What is not a CloudFormation resource, after the stack: the jsonpaths files (S3
    objects in the stack's buckets) and the warehouse table (SQL)."""
    from ecomlib.pipelines import batch, warehouse

    document = json.dumps(warehouse.JSONPATHS, indent=2).encode()
    aws.client("s3").put_object(Bucket=warehouse.bucket_name(), Key="config/jsonpaths.json", Body=document)
    aws.client("s3").put_object(Bucket=batch.bucket_name(), Key=f"{batch.PREFIX}config/jsonpaths.json", Body=document)
    warehouse.create_table()


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


def main(argv: list[str] | None = None) -> int:
    """``python -m ecomlib.infra package OUTPUT`` | ``finish``: the steps around
    ``aws cloudformation deploy`` (see the module's docstring)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ecomlib.infra", description=main.__doc__)
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("package", help="upload the functions' zips, write the packaged template").add_argument("output")
    sub.add_parser("finish", help="upload the jsonpaths files and create the warehouse table")
    args = parser.parse_args(argv)
    if args.step == "package":
        package(args.output)
        print(args.output)
    else:
        finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
