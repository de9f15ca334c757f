"""Only the learner gets in: the embedded AWS has credentials of its own, kept where only its
user can read them, and refuses every request AWS would refuse, with AWS's errors."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import stat
import time
import zipfile

import boto3
import botocore.auth
import pytest
import requests
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from ecomlib import aws
from ecomlib.local import server

NO_RETRY = Config(retries={"max_attempts": 1})


@pytest.fixture(scope="module")
def two_learners(tmp_path_factory):
    """Two embedded AWS on one host, each with its own state folder (two learners)."""
    learners = {}
    previous = os.environ["ECOM_HOME"]
    try:
        for name in ("alice", "bob"):
            home = tmp_path_factory.mktemp(name)
            os.environ["ECOM_HOME"] = str(home)
            learners[name] = {"home": home, "endpoint": server.start(), "keys": server.credentials()}
        yield learners
    finally:
        for learner in learners.values():
            os.environ["ECOM_HOME"] = str(learner["home"])
            server.stop()
        os.environ["ECOM_HOME"] = previous


def client(learner: dict, service: str, keys: dict | None = None, config: Config = NO_RETRY):
    keys = learner["keys"] if keys is None else keys
    return boto3.client(service, endpoint_url=learner["endpoint"], region_name="us-east-1", config=config, **keys)


def refused(call) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as error:
        call()
    e = error.value.response
    return e["Error"]["Code"], e["Error"].get("Message", ""), e["ResponseMetadata"]["HTTPStatusCode"]


INVENTED = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "testing"}


def test_state_folder_and_files_are_private(two_learners):
    home = two_learners["alice"]["home"]
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("credentials.json", "server.json", "server.log", "start.lock"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
    keys = two_learners["alice"]["keys"]
    assert keys["aws_access_key_id"].startswith("AKIA") and len(keys["aws_access_key_id"]) == 20
    assert keys != two_learners["bob"]["keys"]


def test_the_learner_own_credentials_work(two_learners):
    alice = two_learners["alice"]
    assert client(alice, "sts").get_caller_identity()["Account"]
    client(alice, "s3").create_bucket(Bucket="alice-bucket")
    assert "alice-bucket" in [b["Name"] for b in client(alice, "s3").list_buckets()["Buckets"]]


@pytest.mark.parametrize("service, call, expected", [
    ("kinesis", lambda c: c.create_stream(StreamName="intruder", ShardCount=1),
     ("UnrecognizedClientException", "The security token included in the request is invalid.", 400)),
    ("dynamodb", lambda c: c.list_tables(),
     ("UnrecognizedClientException", "The security token included in the request is invalid.", 400)),
    ("lambda", lambda c: c.list_functions(),
     ("UnrecognizedClientException", "The security token included in the request is invalid.", 403)),
    ("sqs", lambda c: c.create_queue(QueueName="intruder"),
     ("InvalidClientTokenId", "The security token included in the request is invalid.", 400)),
    ("sts", lambda c: c.get_caller_identity(),
     ("InvalidClientTokenId", "The security token included in the request is invalid.", 403)),
    ("iam", lambda c: c.create_role(RoleName="intruder", AssumeRolePolicyDocument="{}"),
     ("InvalidClientTokenId", "The security token included in the request is invalid.", 403)),
    ("s3", lambda c: c.create_bucket(Bucket="intruder"),
     ("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", 403)),
])
def test_invented_credentials_are_refused(two_learners, service, call, expected):
    assert refused(lambda: call(client(two_learners["alice"], service, INVENTED))) == expected


def test_another_learner_credentials_are_refused_and_change_nothing(two_learners):
    alice, bob = two_learners["alice"], two_learners["bob"]
    code, _, _ = refused(lambda: client(alice, "kinesis", bob["keys"]).create_stream(StreamName="bobs", ShardCount=1))
    assert code == "UnrecognizedClientException"
    assert refused(lambda: client(alice, "s3", bob["keys"]).delete_bucket(Bucket="alice-bucket"))[0] == "InvalidAccessKeyId"
    assert client(alice, "kinesis").list_streams()["StreamNames"] == []
    assert "alice-bucket" in [b["Name"] for b in client(alice, "s3").list_buckets()["Buckets"]]


def test_a_wrong_secret_is_refused(two_learners):
    alice = two_learners["alice"]
    wrong = {**alice["keys"], "aws_secret_access_key": alice["keys"]["aws_secret_access_key"][::-1]}
    assert refused(lambda: client(alice, "kinesis", wrong).list_streams())[0:3:2] == ("InvalidSignatureException", 400)
    assert refused(lambda: client(alice, "sts", wrong).get_caller_identity())[0] == "SignatureDoesNotMatch"
    code, message, status = refused(lambda: client(alice, "s3", wrong).delete_bucket(Bucket="alice-bucket"))
    assert (code, status) == ("SignatureDoesNotMatch", 403)
    assert message.startswith("The request signature we calculated does not match")


def test_unsigned_requests_are_refused(two_learners):
    alice = two_learners["alice"]
    unsigned = Config(signature_version=UNSIGNED, retries={"max_attempts": 1})
    assert refused(lambda: client(alice, "kinesis", {}, unsigned).list_streams()) == (
        "MissingAuthenticationTokenException", "Missing Authentication Token", 400)
    assert refused(lambda: client(alice, "sts", {}, unsigned).get_caller_identity())[0] == "MissingAuthenticationToken"
    assert refused(lambda: client(alice, "s3", {}, unsigned).delete_bucket(Bucket="alice-bucket"))[0] == "AccessDenied"
    # What a web page or `curl` could send: refused, and nothing reset.
    for path in ("/_ecomlib/reset", "/moto-api/reset", "/_ecomlib/faults/crash"):
        answer = requests.post(alice["endpoint"] + path, json={"functions": "all"}, timeout=10)
        assert answer.status_code == 403, path
    answer = requests.post(alice["endpoint"], data=json.dumps({"StreamName": "x", "ShardCount": 1}),
                           headers={"X-Amz-Target": "Kinesis_20131202.CreateStream"}, timeout=10)
    assert answer.status_code == 400 and answer.json()["__type"] == "MissingAuthenticationTokenException"
    assert "alice-bucket" in [b["Name"] for b in client(alice, "s3").list_buckets()["Buckets"]]
    assert client(alice, "kinesis").list_streams()["StreamNames"] == []


def test_stale_signatures_are_refused(two_learners, monkeypatch):
    alice = two_learners["alice"]
    past = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=6)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: past)
    code, message, _ = refused(lambda: client(alice, "kinesis").list_streams())
    assert code == "InvalidSignatureException" and message.startswith("Signature expired: ")
    assert message.endswith(" - 5 min.)")
    assert refused(lambda: client(alice, "sts").get_caller_identity())[0] == "SignatureDoesNotMatch"
    client(alice, "s3").list_buckets()  # S3 allows 15 minutes
    older = past - dt.timedelta(minutes=10)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: older)
    assert refused(lambda: client(alice, "s3").list_buckets())[0] == "RequestTimeTooSkewed"


def test_control_routes_need_the_credentials(two_learners, monkeypatch):
    from ecomlib.local import auth

    alice, bob = two_learners["alice"], two_learners["bob"]
    monkeypatch.setenv("ECOM_HOME", str(alice["home"]))
    assert server.status()["endpoint"] == alice["endpoint"]  # signed with alice's own keys
    url = f"{alice['endpoint']}/_ecomlib/reset"
    forged = requests.post(url, headers=auth.sign("POST", url, b"", bob["keys"], "us-east-1"), timeout=10)
    assert forged.status_code == 403 and forged.json()["__type"] == "UnrecognizedClientException"
    assert "alice-bucket" in [b["Name"] for b in client(alice, "s3").list_buckets()["Buckets"]]


def test_role_sessions_are_accepted_only_with_their_token_and_while_valid(two_learners):
    alice = two_learners["alice"]
    iam = client(alice, "iam")
    role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    creds = client(alice, "sts").assume_role(RoleArn=role, RoleSessionName="sess", DurationSeconds=900)["Credentials"]
    keys = {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"]}
    who = client(alice, "sts", {**keys, "aws_session_token": creds["SessionToken"]}).get_caller_identity()
    assert ":assumed-role/reader/sess" in who["Arn"]
    assert refused(lambda: client(alice, "sts", keys).get_caller_identity())[0] == "InvalidClientTokenId"
    bad = {**keys, "aws_session_token": creds["SessionToken"][:-4] + "AAAA"}
    assert refused(lambda: client(alice, "kinesis", bad).list_streams())[0] == "UnrecognizedClientException"


def test_expired_session_credentials_are_refused():
    """The check itself, on a session whose expiry has passed (AWS: ExpiredToken)."""
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from ecomlib.local import auth

    class Session:
        access_key_id, secret_access_key, session_token = "ASIAEXAMPLEEXAMPLE12", "s" * 40, "token"
        role_arn = "arn:aws:iam::123456789012:role/r"
        expiration = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)

    checker = auth.Authenticator(auth.new_credentials())
    checker._sessions[Session.access_key_id] = Session  # noqa: SLF001
    request = AWSRequest(method="POST", url="http://127.0.0.1:1/", data=b"{}",
                         headers={"X-Amz-Target": "Kinesis_20131202.ListStreams"})
    botocore.auth.SigV4Auth(Credentials(Session.access_key_id, Session.secret_access_key, Session.session_token),
                            "kinesis", "us-east-1").add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:1"
    with pytest.raises(auth.Refused) as error:
        checker.verify("POST", "/", "", headers, b"{}")
    assert error.value.kind == "expired_token"
    assert auth.error_response("expired_token", "json")[2] == json.dumps(
        {"__type": "ExpiredTokenException", "message": "The security token included in the request is expired"}).encode()


def test_functions_get_their_role_credentials_never_the_learner_keys():
    lam, iam = aws.client("lambda"), aws.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    role = iam.create_role(RoleName="ecom-whoami-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "import os, boto3\n"
                         "def lambda_handler(event, context):\n"
                         "    return {'key': os.environ.get('AWS_ACCESS_KEY_ID'),\n"
                         "            'token': bool(os.environ.get('AWS_SESSION_TOKEN')),\n"
                         "            'arn': boto3.client('sts').get_caller_identity()['Arn']}\n")
    try:
        for _ in range(100):
            try:
                lam.create_function(FunctionName="ecom-whoami", Role=role, Runtime="python3.12",
                                    Handler="handler.lambda_handler", Code={"ZipFile": code.getvalue()})
                break
            except lam.exceptions.InvalidParameterValueException:  # the new role is not usable yet
                time.sleep(0.05)
        lam.get_waiter("function_active_v2").wait(FunctionName="ecom-whoami")
        answer = json.loads(lam.invoke(FunctionName="ecom-whoami")["Payload"].read())
        assert answer["key"] != aws.session().get_credentials().access_key and answer["token"] is True
        assert ":assumed-role/ecom-whoami-role/" in answer["arn"]
    finally:
        lam.delete_function(FunctionName="ecom-whoami")
        iam.delete_role(RoleName="ecom-whoami-role")


def test_presigned_urls_work_until_they_expire(two_learners):
    alice = two_learners["alice"]
    s3 = client(alice, "s3", config=Config(signature_version="s3v4", retries={"max_attempts": 1}))  # SigV4 URLs
    s3.create_bucket(Bucket="alice-shared")
    s3.put_object(Bucket="alice-shared", Key="shared.txt", Body=b"hello")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "alice-shared", "Key": "shared.txt"}, ExpiresIn=60)
    assert requests.get(url, timeout=10).content == b"hello"
    assert requests.get(url.replace("shared.txt", "other.txt"), timeout=10).status_code == 403  # signed for one key
    soon = s3.generate_presigned_url("get_object", Params={"Bucket": "alice-shared", "Key": "shared.txt"}, ExpiresIn=1)
    time.sleep(2)
    expired = requests.get(soon, timeout=10)
    assert expired.status_code == 403 and b"<Message>Request has expired</Message>" in expired.content
