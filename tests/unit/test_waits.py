"""The course's waits (ecomlib.deploy): states polled until reached, a new role retried (no AWS)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from ecomlib import deploy


def test_wait_until_returns_the_awaited_state_and_names_what_is_late():
    states = iter(["Creating", "Creating", "Enabled"])
    assert deploy.wait_until(lambda: next(states), "Enabled", 5, "mapping x") == "Enabled"
    with pytest.raises(TimeoutError, match=r"mapping y: still 'Deleting' after 0 s \(waiting for \('Deleted',\)\)"):
        deploy.wait_until(lambda: "Deleting", ("Deleted",), 0.2, "mapping y")


def _lambda_client():
    return boto3.client("lambda", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def test_a_role_not_yet_usable_is_retried_until_it_is():
    """CreateFunction with a new role: AWS answers InvalidParameterValueException "The role
    defined for the function cannot be assumed by Lambda." for a few seconds."""
    lam = _lambda_client()
    stubber = Stubber(lam)
    for _ in range(2):
        stubber.add_client_error("create_function", "InvalidParameterValueException",
                                 "The role defined for the function cannot be assumed by Lambda.", 400)
    stubber.add_response("create_function", {"FunctionName": "ecom-x"})
    with stubber:
        answer = deploy.retry_while_propagating(lambda: lam.create_function(
            FunctionName="ecom-x", Role="arn:aws:iam::123456789012:role/ecom-x", Code={"ZipFile": b"x"}), "f")
    assert answer["FunctionName"] == "ecom-x"
    stubber.assert_no_pending_responses()


def test_other_errors_are_raised_at_once_and_a_role_never_usable_times_out():
    from botocore.exceptions import ClientError

    lam = _lambda_client()
    stubber = Stubber(lam)
    stubber.add_client_error("create_function", "InvalidParameterValueException", "Unsupported runtime", 400)
    with stubber, pytest.raises(ClientError, match="Unsupported runtime"):
        deploy.retry_while_propagating(lambda: lam.create_function(
            FunctionName="ecom-x", Role="arn:aws:iam::123456789012:role/ecom-x", Code={"ZipFile": b"x"}), "f")
    stubber = Stubber(lam)
    for _ in range(20):
        stubber.add_client_error("create_event_source_mapping", "InvalidParameterValueException",
                                 "Cannot access stream arn:aws:kinesis:us-east-1:123456789012:stream/ecom-invoices. "
                                 "Please ensure the role can perform the GetRecords, GetShardIterator, DescribeStream, "
                                 "and ListStreams Actions on your stream in IAM.", 400)
    with stubber, pytest.raises(TimeoutError, match="connecting: the new role or policy was still not usable"):
        deploy.retry_while_propagating(lambda: lam.create_event_source_mapping(
            FunctionName="ecom-x", EventSourceArn="arn:aws:kinesis:us-east-1:123456789012:stream/ecom-invoices"),
            "connecting", timeout=0.5)
