"""COPY's options as the local warehouse reads them (``redshift_copy.parse_copy``), no AWS.

Each accepted form is a statement and the CopySpec fields it sets; each rejected form a
statement and the error Redshift (or, for what is not emulated, the local warehouse) gives.
The forms follow the COPY reference: ``OPTION [AS] argument``, options in any order.
"""

from __future__ import annotations

import pytest
# sqlglot is imported here, at collection, in one thread: importing it for the first time
# while the embedded AWS's warehouse warm-up thread imports it too can leave it half-initialized.
import sqlglot.dialects.redshift  # noqa: F401

from ecomlib.local.redshift_copy import CopySpec, parse_copy
from ecomlib.local.redshift_copy.options import OPTIONS
from ecomlib.local.redshift_sql import WarehouseError

FROM = "COPY sales FROM 's3://bucket/prefix' IAM_ROLE 'arn:aws:iam::123456789012:role/copy'"

ACCEPTED = [
    # (options after FROM ... IAM_ROLE, the fields they set)
    ("", {"format": "TEXT", "delimiter": "|", "quote": '"', "null_as": "\\N", "json_option": "auto",
          "compression": None, "max_error": 0, "ignore_header": 0}),
    ("CSV", {"format": "CSV", "delimiter": ","}),
    ("FORMAT AS CSV", {"format": "CSV"}),
    ("FORMAT CSV QUOTE AS ''''", {"format": "CSV", "quote": "'"}),
    ("CSV QUOTE '%'", {"format": "CSV", "quote": "%"}),
    ("CSV DELIMITER ';'", {"format": "CSV", "delimiter": ";"}),
    ("DELIMITER AS '\t'", {"format": "TEXT", "delimiter": "\t"}),
    ("JSON", {"format": "JSON", "json_option": "auto"}),
    ("JSON 'auto'", {"format": "JSON", "json_option": "auto"}),
    ("FORMAT AS JSON 'auto ignorecase'", {"format": "JSON", "json_option": "auto ignorecase"}),
    ("FORMAT JSON AS 's3://bucket/jsonpaths.json'", {"format": "JSON", "json_option": "s3://bucket/jsonpaths.json"}),
    ("FORMAT AS PARQUET", {"format": "PARQUET"}),
    ("GZIP", {"compression": "gzip"}),
    ("BZIP2", {"compression": "bzip2"}),
    ("ZSTD", {"compression": "zstd"}),
    ("MANIFEST", {"manifest": True}),
    ("IGNOREHEADER 1", {"ignore_header": 1}),
    ("IGNOREHEADER AS 2", {"ignore_header": 2}),
    ("NULL AS 'NULL'", {"null_as": "NULL"}),
    ("TIMEFORMAT 'auto'", {"time_format": "auto"}),
    ("TIMEFORMAT AS 'epochsecs'", {"time_format": "epochsecs"}),
    ("DATEFORMAT 'YYYY/MM/DD'", {"date_format": "YYYY/MM/DD"}),
    ("ACCEPTINVCHARS", {"accept_inv_chars": "?"}),
    ("ACCEPTINVCHARS AS '^'", {"accept_inv_chars": "^"}),
    ("MAXERROR 10", {"max_error": 10}),
    ("MAXERROR AS 0", {"max_error": 0}),
    ("IGNOREALLERRORS", {"max_error": 10**12}),
    ("TRUNCATECOLUMNS BLANKSASNULL EMPTYASNULL", {"truncate_columns": True, "blanks_as_null": True,
                                                  "empty_as_null": True}),
    ("ROUNDEC FILLRECORD TRIMBLANKS", {"round_decimals": True, "fill_record": True, "trim_blanks": True}),
    ("EXPLICIT_IDS REMOVEQUOTES ESCAPE NOLOAD", {"explicit_ids": True, "remove_quotes": True, "escape": True,
                                                 "no_load": True}),
    # Accepted, no effect here.
    ("ACCEPTANYDATE IGNOREBLANKLINES", {}),
    ("REGION 'eu-west-1' ENCODING UTF8 COMPROWS 100000", {}),
    ("COMPUPDATE OFF STATUPDATE ON", {}),
    ("COMPUPDATE STATUPDATE", {}),
    ("COMPUPDATE PRESET", {}),
    ("CREDENTIALS 'aws_iam_role=arn:aws:iam::123456789012:role/copy'", {}),
    ("ACCESS_KEY_ID 'AKIDEXAMPLE' SECRET_ACCESS_KEY 'secret' SESSION_TOKEN 'token'", {}),
    ("WITH DELIMITER ','", {"delimiter": ","}),
    ("json 'auto' gzip timeformat 'auto' maxerror 1;", {"format": "JSON", "compression": "gzip",
                                                        "time_format": "auto", "max_error": 1}),
    # Options in any order: a later one wins, as for any keyword list.
    ("GZIP JSON 'auto' TIMEFORMAT 'auto' MANIFEST", {"compression": "gzip", "format": "JSON", "manifest": True}),
    ("DELIMITER ',' CSV", {"format": "CSV", "delimiter": ","}),
]


@pytest.mark.parametrize(("options", "expected"), ACCEPTED, ids=[a or "defaults" for a, _ in ACCEPTED])
def test_accepted_copy_options(options, expected):
    spec = parse_copy(f"{FROM} {options}")
    assert isinstance(spec, CopySpec)
    assert {name: getattr(spec, name) for name in expected} == expected
    # Fields the options do not mention keep their defaults (or format's delimiter).
    defaults = CopySpec(table="sales", schema=None, columns=None, source="s3://bucket/prefix")
    for name in ("manifest", "no_load", "explicit_ids", "round_decimals"):
        if name not in expected:
            assert getattr(spec, name) == getattr(defaults, name), name


TARGETS = [
    # (statement, (schema, table, columns, source))
    ("COPY sales FROM 's3://b/k'", (None, "sales", None, "s3://b/k")),
    ("copy Public.Sales from 's3://b/k'", ("public", "sales", None, "s3://b/k")),
    ("COPY dev.public.sales FROM 's3://b/k'", ("public", "sales", None, "s3://b/k")),
    ("COPY sales (InvoiceNo, quantity) FROM 's3://b/k'", (None, "sales", ["invoiceno", "quantity"], "s3://b/k")),
    ('COPY sales ("InvoiceNo", quantity) FROM \'s3://b/k\'', (None, "sales", ["InvoiceNo", "quantity"], "s3://b/k")),
    ("COPY sales FROM 's3://b/manifests/load.manifest' MANIFEST", (None, "sales", None,
                                                                   "s3://b/manifests/load.manifest")),
]


@pytest.mark.parametrize(("statement", "expected"), TARGETS, ids=[t[0][:40] for t in TARGETS])
def test_copy_table_columns_and_source(statement, expected):
    spec = parse_copy(statement)
    assert (spec.schema, spec.table, spec.columns, spec.source) == expected


REJECTED = [
    # (statement, the error)
    (f"{FROM} BOGUS", 'ERROR: syntax error at or near "BOGUS" in COPY'),
    (f"{FROM} GZIP LZOP", 'ERROR: syntax error at or near "LZOP" in COPY'),
    (f"{FROM} DELIMITER", "ERROR: syntax error at end of input"),
    (f"{FROM} DELIMITER AS", "ERROR: syntax error at end of input"),
    (f"{FROM} DELIMITER comma", 'ERROR: syntax error at or near "comma"'),
    (f"{FROM} IGNOREHEADER 'one'", "ERROR: IGNOREHEADER takes a number, not 'one'"),
    (f"{FROM} MAXERROR 'many'", "ERROR: MAXERROR takes a number, not 'many'"),
    (f"{FROM} MAXERROR 1.5", "ERROR: MAXERROR takes a number, not '1.5'"),
    (f"{FROM} REGION eu", 'ERROR: syntax error at or near "eu"'),
    (f"{FROM} DELIMITER '||'", "ERROR: COPY delimiter must be a single character, not '||'"),
    (f"{FROM} CSV DELIMITER ''", "ERROR: COPY delimiter must be a single character, not ''"),
    (f"{FROM} FORMAT AS ORC", "ERROR: COPY ... ORC is not supported by the local warehouse"),
    (f"{FROM} FORMAT AS AVRO 'auto'", "ERROR: COPY ... AVRO is not supported by the local warehouse"),
    (f"{FROM} FIXEDWIDTH 'a:1'", "ERROR: COPY ... FIXEDWIDTH is not supported by the local warehouse"),
    ("COPY sales FROM 'dynamodb://ProductCatalog' READRATIO 50",
     "ERROR: COPY from 'dynamodb://ProductCatalog' is not supported by the local warehouse: only s3:// sources"),
    ("COPY sales 's3://b/k'", 'ERROR: syntax error at or near "s3://b/k"'),
    ("COPY sales TO 's3://b/k'", 'ERROR: syntax error at or near "TO"'),
    ("COPY FROM 's3://b/k'", 'ERROR: syntax error at or near "FROM"'),
    ("COPY public. FROM 's3://b/k'", 'ERROR: syntax error at or near "FROM"'),
    ("COPY sales FROM s3", 'ERROR: syntax error at or near "s3"'),
    ("COPY sales FROM", "ERROR: syntax error at end of input"),
    ("COPY", "ERROR: syntax error at end of input"),
    ("COPY a.b.c.d FROM 's3://b/k'", "ERROR: syntax error in COPY: table name expected"),
    ("COPY sales (a, b FROM 's3://b/k'", "ERROR: syntax error at end of input"),
]


@pytest.mark.parametrize(("statement", "message"), REJECTED, ids=[r[0][len(FROM):][:40] or r[0][:40]
                                                                  for r in REJECTED])
def test_rejected_copy_options(statement, message):
    with pytest.raises(WarehouseError) as failed:
        parse_copy(statement)
    assert str(failed.value).startswith(message)


def test_every_option_has_a_known_shape():
    shapes = {"flag", "value", "word", "optional string", "optional switch", "noise", "unsupported"}
    fields = set(CopySpec.__dataclass_fields__)
    for name, option in OPTIONS.items():
        assert name == option.name and name.isupper()
        assert option.shape in shapes, name
        assert set(option.sets) <= fields and (option.attribute is None or option.attribute in fields), name
