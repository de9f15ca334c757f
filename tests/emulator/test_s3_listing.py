"""S3 ListObjectsV2 pages on the embedded AWS: moto's own answers, page for page, at a cost
per key that does not grow with the bucket (``ecomlib.local.patches._patch_s3_listing``)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid

import boto3
import pytest
from moto import mock_aws

from ecomlib import aws


def _pages(s3, **kwargs) -> list[dict]:
    pages = []
    while True:
        page = s3.list_objects_v2(**kwargs)
        pages.append({"Keys": [(o["Key"], o["Size"], o["ETag"]) for o in page.get("Contents", [])],
                      "Prefixes": [p["Prefix"] for p in page.get("CommonPrefixes", [])],
                      "KeyCount": page["KeyCount"], "IsTruncated": page["IsTruncated"]})
        if not page["IsTruncated"]:
            return pages
        kwargs["ContinuationToken"] = page["NextContinuationToken"]


def _run(s3, bucket: str) -> dict:
    s3.create_bucket(Bucket=bucket)
    for i in range(120):
        s3.put_object(Bucket=bucket, Key=f"raw/{(i * 37) % 120:04d}.json", Body=b"x" * i)
        s3.put_object(Bucket=bucket, Key=f"rawer/{i % 9}/{i:04d}.csv", Body=b"y")
    s3.put_object(Bucket=bucket, Key="raw/0005.json", Body=b"overwritten")
    out = {"all": _pages(s3, Bucket=bucket, MaxKeys=17),
           "prefix": _pages(s3, Bucket=bucket, Prefix="raw/", MaxKeys=10),
           "start after": _pages(s3, Bucket=bucket, Prefix="raw/", StartAfter="raw/0100.json", MaxKeys=6),
           "delimiter": _pages(s3, Bucket=bucket, Prefix="rawer/", Delimiter="/", MaxKeys=4),
           "default page": _pages(s3, Bucket=bucket)}
    first = s3.list_objects_v2(Bucket=bucket, Prefix="raw/", MaxKeys=10)
    s3.delete_object(Bucket=bucket, Key=first["Contents"][-1]["Key"])
    s3.delete_object(Bucket=bucket, Key="raw/0011.json")
    s3.put_object(Bucket=bucket, Key="raw/0010a.json", Body=b"new")
    out["after writes"] = _pages(s3, Bucket=bucket, Prefix="raw/", MaxKeys=10,
                                 ContinuationToken=first["NextContinuationToken"])
    return out


@pytest.mark.slow
def test_listing_pages_are_moto_s_own():
    bucket = f"ecom-listing-{uuid.uuid4().hex[:8]}"
    embedded = aws.client("s3")
    try:
        ours = _run(embedded, bucket)
    finally:
        for page in embedded.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                embedded.delete_object(Bucket=bucket, Key=o["Key"])
        embedded.delete_bucket(Bucket=bucket)
    with mock_aws():
        theirs = _run(boto3.client("s3", region_name="us-east-1", aws_access_key_id="testing",
                                   aws_secret_access_key="testing"), bucket)
    assert ours == theirs
    assert len(ours["all"]) == 240 // 17 + 1 and len(ours["prefix"]) == 12
    assert [k for p in ours["start after"] for k, *_ in p["Keys"]] == [f"raw/{i:04d}.json" for i in range(101, 120)]


SCALING = textwrap.dedent("""
    import json, sys, time
    from moto import mock_aws
    from moto.s3.models import s3_backends
    from ecomlib.local import patches

    patches._patch_s3_listing()
    out = {}
    with mock_aws():
        backend = s3_backends["123456789012"]["aws"]
        for size in (int(arg) for arg in sys.argv[1:]):
            name = f"bucket{size}"
            backend.create_bucket(name, "us-east-1")
            for i in range(size):
                backend.put_object(name, f"raw/{i:07d}.json", b"{}")
            bucket, token, pages = backend.get_bucket(name), None, []
            while True:
                started = time.process_time()
                keys, truncated, token = backend.list_objects_v2(bucket, "raw/", None, token, None, 1000)
                pages.append((time.process_time() - started, len(keys)))
                if not truncated:
                    break
            # per key: the whole listing, and its pages after the first (which sorts the names)
            out[size] = [sum(s for s, _ in pages) / size,
                         sum(s for s, _ in pages[1:]) / sum(n for _, n in pages[1:])]
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_a_listing_page_costs_the_same_first_or_last():
    """Per key, in process CPU time: a page of a 20,000-key listing costs what a page of a
    2,000-key one does; the whole listing (its first page sorts the names once) at most 2x.
    (moto's own code: ~20x more per key, each page sorting the whole bucket.)"""
    done = subprocess.run([sys.executable, "-c", SCALING, "2000", "20000"], capture_output=True, text=True,
                          timeout=300, check=True)
    costs = json.loads(done.stdout)
    (small_total, small_page), (large_total, large_page) = costs["2000"], costs["20000"]
    # within 2x (moto's own listing was 10-20x worse per key at 10x the keys); CPU time of a
    # child process still varies on a loaded machine
    assert large_page < 2 * small_page, costs
    assert large_total < 2 * small_total, costs
