"""What AWS refuses as a duplicate: a permission's statement id, a REST API resource's path part."""

import io
import json
import zipfile

import pytest
from botocore.exceptions import ClientError

from ecomlib import aws, deploy


def test_a_second_permission_with_the_same_statement_id_is_refused():
    iam, lam = aws.client("iam"), aws.client("lambda")
    role = iam.create_role(RoleName="ecom-test-dup-role",
                           AssumeRolePolicyDocument=json.dumps(deploy.LAMBDA_TRUST_POLICY))["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return 1\n")
    deploy.retry_while_propagating(lambda: lam.create_function(
        FunctionName="ecom-test-dup", Runtime=deploy.RUNTIME, Role=role, Handler="handler.lambda_handler",
        Code={"ZipFile": buffer.getvalue()}), "creating the test function")
    lam.get_waiter("function_active_v2").wait(FunctionName="ecom-test-dup")
    grant = dict(FunctionName="ecom-test-dup", StatementId="from-events", Action="lambda:InvokeFunction",
                 Principal="events.amazonaws.com")
    lam.add_permission(**grant)
    with pytest.raises(ClientError) as caught:
        lam.add_permission(**grant)
    assert caught.value.response["Error"]["Code"] == "ResourceConflictException"
    assert "The statement id (from-events) provided already exists" in caught.value.response["Error"]["Message"]
    assert len(json.loads(lam.get_policy(FunctionName="ecom-test-dup")["Policy"])["Statement"]) == 1


def test_a_second_resource_with_the_same_path_part_is_refused():
    apigw = aws.client("apigateway")
    api = apigw.create_rest_api(name="ecom-test-dup-api")["id"]
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    apigw.create_resource(restApiId=api, parentId=root, pathPart="invoices")
    with pytest.raises(ClientError) as caught:
        apigw.create_resource(restApiId=api, parentId=root, pathPart="invoices")
    assert caught.value.response["Error"]["Code"] == "ConflictException"
    assert caught.value.response["Error"]["Message"] == (
        "Another resource with the same parent already has this name: invoices")
    assert [r["pathPart"] for r in apigw.get_resources(restApiId=api)["items"] if "pathPart" in r] == ["invoices"]
