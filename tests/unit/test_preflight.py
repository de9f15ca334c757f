"""The real-account target asks first: nothing is created until the account is confirmed."""

from __future__ import annotations

import pytest

from ecomlib import aws, preflight


@pytest.fixture
def real_account(monkeypatch):
    """The aws target, with STS answered here (this machine has no network)."""
    monkeypatch.setenv("ECOM_TARGET", "aws")
    monkeypatch.setenv("ECOM_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    monkeypatch.delenv(preflight.CONFIRM_SETTING, raising=False)
    monkeypatch.setattr(aws, "identity", lambda: ("111122223333", "eu-west-1"))
    monkeypatch.setattr(preflight, "_confirmed", set())


def test_unconfirmed_account_gets_the_preflight_and_no_client(real_account):
    with pytest.raises(preflight.NotConfirmed) as refused:
        aws.client("kinesis")
    text = str(refused.value)
    assert "account: 111122223333" in text and "region: eu-west-1" in text
    assert "Redshift cluster" in text and "per hour" in text and "per day" in text
    assert "ECOM_AWS_CONFIRM=111122223333" in text and "Nothing was created" in text


def test_confirming_another_account_is_refused(real_account, monkeypatch):
    monkeypatch.setenv(preflight.CONFIRM_SETTING, "999999999999")
    with pytest.raises(preflight.NotConfirmed, match="does not name this account"):
        aws.client("s3")


def test_confirmed_account_gets_its_clients(real_account, monkeypatch, capsys):
    monkeypatch.setenv(preflight.CONFIRM_SETTING, "111122223333")
    s3 = aws.client("s3")
    assert s3.meta.endpoint_url.startswith("https://") and s3.meta.region_name == "eu-west-1"
    assert "Confirmed: going on." in capsys.readouterr().out
    aws.client("dynamodb")  # asked once per account and region
    assert "Preflight" not in capsys.readouterr().out


def test_local_and_endpoint_targets_ask_nothing(monkeypatch):
    monkeypatch.delenv(preflight.CONFIRM_SETTING, raising=False)
    preflight.ensure_confirmed()  # the tests run on the embedded AWS
    assert aws.client("s3").meta.endpoint_url.startswith("http://127.0.0.1:")


def test_plan_names_resources_with_the_prefix(monkeypatch):
    monkeypatch.setenv("ECOM_PREFIX", "shop")
    names = " ".join(preflight.plan()["names"])
    assert "shop-invoices" in names and "shop-warehouse" in names and "ecom-" not in names


def test_the_command_line_stops_at_the_preflight(real_account, capsys):
    from ecomlib.__main__ import main

    assert main(["teardown", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "Preflight" in err and "ECOM_AWS_CONFIRM=111122223333" in err and "Traceback" not in err


def test_missing_credentials_are_explained(monkeypatch, tmp_path):
    monkeypatch.setenv("ECOM_TARGET", "aws")
    monkeypatch.setenv("ECOM_REGION", "eu-west-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(preflight, "_confirmed", set())
    with pytest.raises(preflight.NotConfirmed, match="no AWS credentials were found"):
        aws.client("s3")
