"""SQL text for DuckDB: string literals and quoted identifiers."""

from __future__ import annotations


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
