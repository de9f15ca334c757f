"""Settings and the client factory: one code path for every target."""

from __future__ import annotations

import pytest
from moto.server import ThreadedMotoServer

from ecomlib import aws, config


def test_defaults(monkeypatch):
    for name in ("ECOM_TARGET", "ECOM_PREFIX", "ECOM_REGION", "ECOM_LOCAL_PORT"):
        monkeypatch.delenv(name, raising=False)
    s = config.settings()
    assert (s.target, s.region, s.prefix, s.local_port, s.is_local) == ("local", "us-east-1", "ecom", 0, True)
    assert config.resource_name("orders") == "ecom-orders"


@pytest.mark.parametrize("name, value, message", [
    ("ECOM_TARGET", "cloud", "choose one of local, endpoint, aws"),
    ("ECOM_PREFIX", "bad prefix!", "ECOM_PREFIX"),
    ("ECOM_LOCAL_PORT", "eighty", "port number"),
])
def test_bad_settings_say_what_is_wrong(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(config.ConfigError, match=message):
        config.settings()


def test_endpoint_target_needs_a_url(monkeypatch):
    monkeypatch.setenv("ECOM_TARGET", "endpoint")
    monkeypatch.delenv("ECOM_ENDPOINT_URL", raising=False)
    with pytest.raises(config.ConfigError, match="ECOM_ENDPOINT_URL"):
        config.settings()


@pytest.mark.slow
def test_endpoint_target_talks_to_the_given_url(monkeypatch):
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        monkeypatch.setenv("ECOM_TARGET", "endpoint")
        monkeypatch.setenv("ECOM_ENDPOINT_URL", f"http://{host}:{port}")
        s3 = aws.client("s3")
        assert s3.meta.endpoint_url == f"http://{host}:{port}"
        s3.create_bucket(Bucket="ecom-endpoint-check")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["ecom-endpoint-check"]
    finally:
        moto.stop()


@pytest.mark.slow
def test_local_clients_use_fake_credentials_and_the_embedded_endpoint():
    kinesis = aws.client("kinesis")
    credentials = kinesis._request_signer._credentials
    from ecomlib.local import server

    assert credentials.access_key == server.credentials()["aws_access_key_id"] != "testing"  # its own
    assert kinesis.meta.endpoint_url.startswith("http://127.0.0.1:")
    assert aws.client("kinesis") is kinesis, "clients are reused"
    assert aws.account_id() == "123456789012"


def test_aws_target_uses_the_standard_configuration(monkeypatch):
    monkeypatch.setenv("ECOM_TARGET", "aws")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("ECOM_REGION", raising=False)
    assert aws.endpoint_url() is None
    session = aws.session()
    assert session.region_name == "eu-west-1"


@pytest.mark.parametrize("prefix", ["ecom", "ecom-alice", "e", "class7-bob", "a" * 40])
def test_prefixes_valid_in_every_name_are_taken(monkeypatch, prefix):
    monkeypatch.setenv("ECOM_PREFIX", prefix)
    assert config.settings().prefix == prefix


@pytest.mark.parametrize("prefix, breaks", [
    ("a" * 41, "IAM roles 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-stream-to-dynamodb-role' is 65 characters: at most 64"),
    ("1ecom", "Redshift cluster '1ecom-warehouse' breaks the rule: it must begin with a letter"),
    ("ecom--x", "Redshift cluster 'ecom--x-warehouse' breaks the rule: it must not have two consecutive hyphens"),
    ("ecom-", "Redshift cluster 'ecom--warehouse' breaks the rule: it must not have two consecutive hyphens"),
    ("-ecom", "S3 buckets '-ecom-artifacts-123456789012' breaks the rule: it must begin and end with a letter or digit"),
    ("xn--shop", "S3 buckets 'xn--shop-artifacts-123456789012' breaks the rule: it must not begin with xn--"),
    ("sg-team", "EC2 security groups 'sg-team-warehouse-sg' breaks the rule: it must not begin with sg-"),
    ("ecom_x", "use only lowercase letters, digits and dashes"),
    ("ecom.x", "use only lowercase letters, digits and dashes"),
    ("ecom-ingest", "'ecom-ingest-api' would be a name of prefix 'ecom' too"),
    ("ecom-invoice", "'ecom-invoice-api' would be a name of prefix 'ecom' too"),
])
def test_a_prefix_that_breaks_a_naming_rule_is_refused_with_the_rule_and_the_name(monkeypatch, prefix, breaks):
    monkeypatch.setenv("ECOM_PREFIX", prefix)
    with pytest.raises(config.ConfigError) as refused:
        config.settings()
    assert str(refused.value).startswith(f"ECOM_PREFIX={prefix!r}: ")
    assert breaks in str(refused.value)


def test_every_kind_the_registry_names_has_its_rules():
    from ecomlib import registry

    assert {r.kind for r in registry.resources()} == set(config.NAME_RULES)
