"""The course's data, described: its columns and types, how raw text becomes the typed
frame (:func:`parse`), and reference figures of the real data set (:data:`REAL_STATS`).

The bottom layer of the data modules: ``data`` (files) and ``synthetic`` (the generator)
both build on it, and it imports neither.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

COLUMNS: list[str] = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]
TEXT_COLUMNS = ["InvoiceNo", "StockCode", "Description", "CustomerID", "Country"]
TEXT = "str"  # pandas' string dtype for all text columns

DEFAULT_ROWS = 20_000
DEFAULT_SEED = 42
DATE_FORMAT = "%m/%d/%Y %H:%M"  # how the CSV spells dates: 12/1/2010 8:26


def _text(column: pd.Series) -> pd.Series:
    return column.astype(TEXT)


def _dates(column: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        dates = column
    else:
        try:
            dates = pd.to_datetime(column, format=DATE_FORMAT)
        except ValueError:
            # e.g. "2010-12-01 08:26:00" from a spreadsheet read as text
            dates = pd.to_datetime(column, format="ISO8601")
    return dates.astype("datetime64[ns]")


def parse(df: pd.DataFrame) -> pd.DataFrame:
    """Type a raw frame of strings (as read with dtype=str) into the course's typed frame.

    Numbers and dates that are already typed (e.g. from a spreadsheet) are accepted too.
    """
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"Missing columns {missing}; expected the Kaggle layout {COLUMNS}")
    df = df.reset_index(drop=True)
    customer = _text(df["CustomerID"]).str.replace(r"\.0*$", "", regex=True)  # 12345.0 -> 12345
    return pd.DataFrame(
        {
            "InvoiceNo": _text(df["InvoiceNo"]),
            "StockCode": _text(df["StockCode"]),
            "Description": _text(df["Description"]),
            "Quantity": pd.to_numeric(df["Quantity"]).astype("int64"),
            "InvoiceDate": _dates(df["InvoiceDate"]),
            "UnitPrice": pd.to_numeric(df["UnitPrice"]).astype("float64").round(3),
            "CustomerID": customer,
            "Country": _text(df["Country"]),
        },
    )


# Headline numbers of the real data (541,909 rows), for checks and notebooks.
REAL_STATS = {
    "rows": 541_909,
    "invoices": 25_900,
    "customers": 4_372,
    "revenue": Decimal("9747747.934"),
    "cancellation_invoice_share": 0.148108,
    "missing_customer_share": 0.249267,
    "missing_description_share": 0.002683,
    "zero_price_share": 2515 / 541_909,
    "returns_not_cancelled_share": 1336 / 541_909,
    "duplicate_share": 5268 / 541_909,
    "repeated_pair_share": 10684 / 541_909,
    "uk_row_share": 0.91432,
    "lines_per_invoice_median": 10,
    "single_line_invoice_share": 0.225521,
    "invoices_per_customer_median": 3,
    "quantity_quantiles": {0.5: 3, 0.75: 10, 0.9: 24, 0.99: 100},
    "unitprice_quantiles": {0.25: 1.25, 0.5: 2.08, 0.75: 4.13, 0.9: 7.95, 0.99: 18.0},
}
