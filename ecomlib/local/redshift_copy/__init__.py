"""COPY from S3 into the local warehouse: options parsed, objects read from moto, rows loaded.

AWS: ``COPY table [(columns)] FROM 's3://bucket/prefix' options`` loads every object
whose key starts with the FROM prefix, or the objects a manifest lists (MANIFEST), read
as JSON (keys matched to columns by 'auto' names, or by a JSONPaths file), CSV, delimited
text or Parquet, optionally GZIP, BZIP2 or ZSTD compressed. Each raw field is converted
to its column's type (DECIMAL truncated to the column's scale unless ROUNDEC; TIMEFORMAT,
DATEFORMAT, EMPTYASNULL, BLANKSASNULL, TRUNCATECOLUMNS, ...). A COPY is all or nothing:
one bad value (more than MAXERROR) fails it, its error points at STL_LOAD_ERRORS, and no
row is loaded. Its ResultRows is the rows loaded, as the API reference says (AWS was
reported returning 0 in 2022, aws/aws-sdk#333).

moto 5.2 runs no SQL, COPY included.

Here, one module per concern: ``options`` (:func:`parse_copy`, one table of the
options) reads the statement; ``source`` (:func:`fetch`) reads the objects from moto's
S3 in-process (under ``MOTO_LOCK``), decompresses them and writes them to memory-backed
temporary files (:func:`workdir`), JSON Lines objects back to back in one file (DuckDB
reads one big file much faster than many small ones); ``load`` (:func:`load`) loads
them with the format's reader (``json_reader``, ``csv_reader``, ``parquet_reader``) in
one ``INSERT ... SELECT`` whose ``convert`` turns each raw text field as COPY does
(DECIMAL exact and truncated to the column's scale unless ROUNDEC; integers must be
integers; TIMEFORMAT 'auto' or the strict default 'YYYY-MM-DD HH:MI:SS'; EMPTYASNULL, BLANKSASNULL, TRUNCATECOLUMNS, MAXERROR, ...). JSON
'auto' matches keys equal to the (lower-case) column names and 'auto ignorecase' any
case, as the COPY reference says; objects may be one per line or back to back
(``{...}{...}``, as Firehose writes them). A failing COPY loads nothing; its error has
Redshift's first sentence and names the first bad value (S3 object, column, value,
reason), which is what STL_LOAD_ERRORS would say (to name the object, a failed load is
diagnosed again from one file per object).

Not emulated: STL_LOAD_ERRORS itself; COPY from DynamoDB, EMR or SSH, or as ORC, Avro
or fixed-width; credentials are accepted and not checked. JSON numbers pass through a
double (exact up to 15 significant digits; Redshift warns about JSON numbers too).
"""

from __future__ import annotations

from ecomlib.local.redshift_copy.load import CopyFailed, load
from ecomlib.local.redshift_copy.options import CopySpec, parse_copy
from ecomlib.local.redshift_copy.source import ACCOUNT_ID, Fetched, fetch, remove_leftover_workdirs, workdir

__all__ = ["ACCOUNT_ID", "CopyFailed", "CopySpec", "Fetched", "fetch", "load", "parse_copy",
           "remove_leftover_workdirs", "workdir"]
