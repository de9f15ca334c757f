"""The embedded AWS's delays: AWS's, scaled by ECOM_TIME_SCALE (no AWS)."""

import pytest

from ecomlib.local import aws_time


def test_default_scale_compresses_a_minute_to_well_under_a_second(monkeypatch):
    monkeypatch.delenv("ECOM_TIME_SCALE", raising=False)
    assert aws_time.seconds("sqs_deleted_recently") == pytest.approx(0.6)


def test_scale_zero_turns_delays_off_and_one_is_aws(monkeypatch):
    monkeypatch.setenv("ECOM_TIME_SCALE", "0")
    assert aws_time.Pending("redshift_creating").ready
    monkeypatch.setenv("ECOM_TIME_SCALE", "1")
    assert aws_time.seconds("redshift_creating") == aws_time.AWS_SECONDS["redshift_creating"]
    assert not aws_time.Pending("redshift_creating").ready


@pytest.mark.parametrize("raw", ["fast", "-0.1", "2"])
def test_a_bad_scale_is_refused_with_the_rule(monkeypatch, raw):
    monkeypatch.setenv("ECOM_TIME_SCALE", raw)
    with pytest.raises(ValueError, match="from 0 to 1"):
        aws_time.scale()
