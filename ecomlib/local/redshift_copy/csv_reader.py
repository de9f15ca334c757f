"""COPY ... CSV and delimited text (the default format): fields by position.

AWS: each line is a row, its fields separated by DELIMITER ('|' for text, ',' for CSV),
matched to the columns in order; IGNOREHEADER skips lines, NULL AS names the null string
('\\N'), FILLRECORD lets short rows end early. CSV quotes fields with QUOTE ('"', a
doubled quote inside); text has no quotes unless REMOVEQUOTES, and ESCAPE makes '\\'
an escape character.

Here: DuckDB's ``read_csv`` with every field as VARCHAR, in strict mode; ``convert``
then turns each field into its column's type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecomlib.local.redshift_copy.options import CopySpec
from ecomlib.local.redshift_copy.sqltext import sql_string
from ecomlib.local.redshift_sql import Column

if TYPE_CHECKING:
    from ecomlib.local.redshift_copy.files import Fetched

_QUOTED = ("delim", "quote", "escape", "nullstr", "compression")  # options DuckDB takes as strings


def _quoting(spec: CopySpec) -> dict[str, str]:
    """DuckDB's quote and escape characters for the format."""
    if spec.format == "CSV":
        return {"quote": spec.quote, "escape": spec.quote}
    if spec.remove_quotes:
        return {"quote": '"', "escape": '"'}
    return {"quote": "", "escape": "\\" if spec.escape else ""}


def csv_source(con, spec: CopySpec, fetched: Fetched, targets: list[Column]) -> tuple[str, list[str]]:
    """(FROM clause, one raw VARCHAR expression per target column) for the COPY's files."""
    names = [f"c{i}" for i in range(len(targets))]
    options = {
        "delim": spec.delimiter,
        "header": "false",
        "skip": str(spec.ignore_header),
        "auto_detect": "false",
        "nullstr": spec.null_as,
        "strict_mode": "true",
        "null_padding": "true" if spec.fill_record else "false",
        "filename": "true",
        "parallel": "true",
        "max_line_size": str(16 * 1024 * 1024),
        **_quoting(spec),
    }
    if spec.compression == "zstd":
        options["compression"] = "zstd"
    rendered = ", ".join(f"{k}={sql_string(v) if k in _QUOTED else v}" for k, v in options.items())
    columns = "{" + ", ".join(f"{sql_string(n)}: 'VARCHAR'" for n in names) + "}"
    paths = "[" + ", ".join(sql_string(str(f.path)) for f in fetched.files) + "]"
    return f"read_csv({paths}, columns={columns}, {rendered}) AS src", [f"src.{n}" for n in names]
