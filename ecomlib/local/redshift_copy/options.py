"""COPY's statement read into a :class:`CopySpec`: the table, the source and the options.

AWS: ``COPY table [(columns)] FROM 's3://...' [WITH] option [...]``; options come in any
order, most take one argument (``DELIMITER [AS] 'c'``, ``IGNOREHEADER [AS] n``), some
stand alone (``GZIP``, ``MANIFEST``), some take an optional one (``JSON ['auto']``,
``ACCEPTINVCHARS ['?']``, ``COMPUPDATE [ON|OFF]``). Tuning options are accepted and have
no effect here; the role of ``IAM_ROLE`` / ``CREDENTIALS 'aws_iam_role=...'`` is kept for
the warehouse to check against the cluster (:func:`role_of`).

Here: :data:`OPTIONS` lists every option once, with the shape of its argument, the
:class:`CopySpec` field it sets, how its argument is checked and the error when it is
wrong; :func:`parse_copy` walks the statement's tokens through that table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ecomlib.local.redshift_sql import WarehouseError, tokenize


@dataclass
class CopySpec:
    """A COPY statement's table, source and options."""

    table: str
    schema: str | None
    columns: list[str] | None
    source: str  # s3://bucket/prefix-or-key
    format: str = "TEXT"  # TEXT | CSV | JSON | PARQUET
    json_option: str = "auto"  # 'auto' | 'auto ignorecase' | s3://jsonpaths
    delimiter: str | None = None
    quote: str = '"'
    ignore_header: int = 0
    null_as: str = "\\N"
    time_format: str | None = None
    date_format: str | None = None
    compression: str | None = None  # gzip | bzip2 | zstd
    manifest: bool = False
    truncate_columns: bool = False
    blanks_as_null: bool = False
    empty_as_null: bool = False
    accept_inv_chars: str | None = None
    max_error: int = 0
    round_decimals: bool = False
    fill_record: bool = False
    trim_blanks: bool = False
    explicit_ids: bool = False
    remove_quotes: bool = False
    escape: bool = False
    no_load: bool = False
    iam_role: str | None = None  # IAM_ROLE 'arn' | default
    credentials: str | None = None  # CREDENTIALS 'aws_iam_role=arn' or temporary keys

    @property
    def target(self) -> str:
        """The table as written in the statement (schema.table or table)."""
        return f"{self.schema}.{self.table}" if self.schema else self.table


def error(message: str) -> WarehouseError:
    return WarehouseError(f"ERROR: {message}")


# ======================================================================================
# The options
# ======================================================================================

# The shapes of an option's argument.
FLAG = "flag"  # none: GZIP
VALUE = "value"  # [AS] 'text' or a number: DELIMITER ',' / IGNOREHEADER AS 1
WORD = "word"  # [AS] 'text', a number or a bare word: IAM_ROLE default, ENCODING UTF8
OPTIONAL_STRING = "optional string"  # [[AS] 'text']: JSON 'auto', ACCEPTINVCHARS
OPTIONAL_SWITCH = "optional switch"  # [ON | OFF | TRUE | FALSE | PRESET]: COMPUPDATE
NOISE = "noise"  # [AS], and nothing is set: FORMAT AS, WITH
UNSUPPORTED = "unsupported"  # a COPY option the local warehouse does not do

SWITCHES = ("ON", "OFF", "TRUE", "FALSE", "PRESET")


def _number(option: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise error(f"{option} takes a number, not '{text}'") from None


def _same(option: str, text: Any) -> Any:
    return text


@dataclass(frozen=True)
class Option:
    """One COPY option: its name, argument shape, the CopySpec fields it sets (``sets``,
    fixed values) and the field its argument goes to (``attribute``, through ``check``,
    which raises Redshift's error for a bad argument). No attribute: accepted, no effect."""

    name: str
    shape: str
    attribute: str | None = None
    sets: dict[str, Any] = field(default_factory=dict)
    check: Callable[[str, Any], Any] = _same


def _flag(name: str, attribute: str | None = None, setting: Any = True) -> Option:
    return Option(name, FLAG, sets={attribute: setting} if attribute else {})


def _accepted(name: str, shape: str = VALUE) -> Option:
    return Option(name, shape)


OPTIONS: dict[str, Option] = {option.name: option for option in [
    # Data format
    _flag("CSV", "format", "CSV"),
    Option("JSON", OPTIONAL_STRING, "json_option", sets={"format": "JSON"}),
    _flag("PARQUET", "format", "PARQUET"),
    *(Option(name, UNSUPPORTED) for name in ("ORC", "AVRO", "FIXEDWIDTH", "SHAPEFILE")),
    Option("FORMAT", NOISE), Option("WITH", NOISE),
    # Compression
    _flag("GZIP", "compression", "gzip"), _flag("BZIP2", "compression", "bzip2"),
    _flag("ZSTD", "compression", "zstd"),
    # Source
    _flag("MANIFEST", "manifest"),
    # Data conversion
    Option("DELIMITER", VALUE, "delimiter"),
    Option("QUOTE", VALUE, "quote"),
    Option("IGNOREHEADER", VALUE, "ignore_header", check=_number),
    Option("NULL", VALUE, "null_as"),
    Option("TIMEFORMAT", VALUE, "time_format"),
    Option("DATEFORMAT", VALUE, "date_format"),
    Option("ACCEPTINVCHARS", OPTIONAL_STRING, "accept_inv_chars", check=lambda _, text: text or "?"),
    _flag("TRUNCATECOLUMNS", "truncate_columns"), _flag("BLANKSASNULL", "blanks_as_null"),
    _flag("EMPTYASNULL", "empty_as_null"), _flag("ROUNDEC", "round_decimals"),
    _flag("FILLRECORD", "fill_record"), _flag("TRIMBLANKS", "trim_blanks"),
    _flag("EXPLICIT_IDS", "explicit_ids"), _flag("REMOVEQUOTES", "remove_quotes"),
    _flag("ESCAPE", "escape"), _flag("ACCEPTANYDATE"), _flag("IGNOREBLANKLINES"),
    _accepted("ENCODING", WORD),
    # Data load
    Option("MAXERROR", VALUE, "max_error", check=_number),
    _flag("IGNOREALLERRORS", "max_error", 10**12),
    _flag("NOLOAD", "no_load"),
    _accepted("COMPROWS"),
    _accepted("COMPUPDATE", OPTIONAL_SWITCH), _accepted("STATUPDATE", OPTIONAL_SWITCH),
    # Authorization: a role is checked against the cluster (redshift_data); keys are not checked
    Option("IAM_ROLE", WORD, "iam_role"), Option("CREDENTIALS", VALUE, "credentials"), _accepted("ACCESS_KEY_ID"),
    _accepted("SECRET_ACCESS_KEY"), _accepted("SESSION_TOKEN"), _accepted("MASTER_SYMMETRIC_KEY"),
    _accepted("REGION"),
]}


# ======================================================================================
# Reading the statement
# ======================================================================================


class _Tokens:
    """The statement's tokens (semicolons left out), read one at a time."""

    def __init__(self, sql: str):
        from sqlglot.tokens import TokenType

        self.types = TokenType
        self.tokens = [t for t in tokenize(sql) if t.token_type != TokenType.SEMICOLON]
        self.position = 1  # after COPY

    def peek(self) -> Any:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def peek_word(self) -> str | None:
        token = self.peek()
        return token.text.upper() if token is not None else None

    def take(self) -> Any:
        token = self.peek()
        if token is None:
            raise error("syntax error at end of input")
        self.position += 1
        return token

    def skip_as(self) -> None:
        if self.peek_word() == "AS":
            self.take()

    def optional_string(self) -> str | None:
        """The text of an optional ``[AS] 'text'``, or None."""
        self.skip_as()
        token = self.peek()
        if token is not None and token.token_type == self.types.STRING:
            return self.take().text
        return None

    def value(self, bare_word: bool) -> str:
        """The text of ``[AS] 'text'`` or ``[AS] number`` (or ``[AS] word`` if bare_word)."""
        token = self.take()
        if token.text.upper() == "AS" and token.token_type != self.types.STRING:
            token = self.take()
        if not bare_word and token.token_type not in (self.types.STRING, self.types.NUMBER):
            raise error(f'syntax error at or near "{token.text}"')
        return token.text


def _argument(tokens: _Tokens, option: Option) -> Any:
    """Read the option's argument (None when it has none, or an optional one is absent)."""
    if option.shape in (VALUE, WORD):
        return tokens.value(bare_word=option.shape == WORD)
    if option.shape == OPTIONAL_STRING:
        return tokens.optional_string()
    if option.shape == OPTIONAL_SWITCH and tokens.peek_word() in SWITCHES:
        tokens.take()
    elif option.shape == NOISE:
        tokens.skip_as()
    elif option.shape == UNSUPPORTED:
        raise error(f"COPY ... {option.name} is not supported by the local warehouse (ecomlib.local.redshift_data)")
    return None


def _apply(tokens: _Tokens, spec: CopySpec) -> None:
    """Read one option and set what it sets."""
    word = tokens.take().text.upper()
    option = OPTIONS.get(word)
    if option is None:
        raise error(f'syntax error at or near "{word}" in COPY')
    for attribute, setting in option.sets.items():
        setattr(spec, attribute, setting)
    argument = _argument(tokens, option)
    if option.attribute:
        checked = option.check(word, argument)
        if checked is not None:
            setattr(spec, option.attribute, checked)


def _table_name(tokens: _Tokens) -> list[str]:
    """The table's name parts: name[.name[.name]] (database.schema.table)."""
    names = [_name(tokens)]
    while tokens.peek() is not None and tokens.peek().token_type == tokens.types.DOT:
        tokens.take()
        names.append(_name(tokens))
    if len(names) > 3:
        raise error("syntax error in COPY: table name expected")
    return names


def _name(tokens: _Tokens) -> str:
    token = tokens.take()
    types = tokens.types
    if token.token_type in (types.STRING, types.NUMBER, types.DOT, types.L_PAREN, types.R_PAREN, types.COMMA,
                            types.FROM):
        raise error(f'syntax error at or near "{token.text}"')
    return token.text


def _column_list(tokens: _Tokens) -> list[str] | None:
    """The optional ``(column, ...)``; unquoted names fold to lower case."""
    if tokens.peek() is None or tokens.peek().token_type != tokens.types.L_PAREN:
        return None
    tokens.take()
    columns = []
    while (token := tokens.take()).token_type != tokens.types.R_PAREN:
        if token.token_type != tokens.types.COMMA:
            columns.append(token.text if token.token_type == tokens.types.IDENTIFIER else token.text.lower())
    return columns


def _source(tokens: _Tokens) -> str:
    """``FROM 's3://...'``."""
    for expected in (tokens.types.FROM, tokens.types.STRING):
        token = tokens.take()
        if token.token_type != expected:
            raise error(f'syntax error at or near "{token.text}"')
    if not token.text.startswith("s3://"):
        raise error(f"COPY from '{token.text}' is not supported by the local warehouse: only s3:// sources")
    return token.text


def _finish(spec: CopySpec) -> CopySpec:
    """Defaults that depend on the format, and checks across options."""
    if spec.delimiter is None:
        spec.delimiter = "," if spec.format == "CSV" else "|"
    if len(spec.delimiter) != 1 and spec.format in ("CSV", "TEXT"):
        raise error(f"COPY delimiter must be a single character, not '{spec.delimiter}'")
    return spec


def parse_copy(sql: str) -> CopySpec:
    """COPY table [(columns)] FROM 's3://...' options..., as Redshift reads it."""
    tokens = _Tokens(sql)
    names = _table_name(tokens)
    columns = _column_list(tokens)
    source = _source(tokens)
    table = names[-1] if '"' in sql else names[-1].lower()
    spec = CopySpec(table=table, schema=names[-2].lower() if len(names) > 1 else None,
                    columns=columns, source=source)
    while tokens.peek() is not None:
        _apply(tokens, spec)
    return _finish(spec)


def role_of(spec: CopySpec) -> str | None:
    """The IAM role a COPY asks the cluster to assume (``'default'`` for IAM_ROLE default), or None."""
    if spec.iam_role:
        return spec.iam_role
    for part in (spec.credentials or "").split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "aws_iam_role":
            return value.strip()
    return None
