"""Load, parse and generate the UCI "Online Retail" data.

The course runs on the "Online Retail" data set: one row per invoice line of a
UK online gift shop, 1 Dec 2010 - 9 Dec 2011 (541,909 rows).  We use the layout
of the popular Kaggle copy ``data.csv``::

    InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country

(ISO-8859-1 text, CRLF line ends, dates like ``12/1/2010 8:26``).

The real file is not part of this repository.  When it is missing, the course
uses a *synthetic* data set made by :func:`generate`: invented products and
customers, but shaped like the real data (seasonality, invoice sizes,
cancellations, missing customers, duplicates, ...).  Only aggregate statistics
of the real data (shares, quantiles, monthly counts) are used, as the constants
below.

Main entry points:

- :func:`load`         the data frame the course runs on (real file if found, else generated)
- :func:`read_csv`     read a Kaggle-layout CSV (plain, .xz, .gz, .bz2 or .zip)
- :func:`write_csv`    write a frame back in the same layout
- :func:`generate`     seeded synthetic data
- :func:`download`     fetch the real data from the UCI repository
- :func:`quality_report`, :func:`summary`, :func:`revenue`   quick facts about a frame

Every function returns the same *typed frame*:

=============  ==============================================================
InvoiceNo      str of six digits; cancellations start with "C"
StockCode      str
Description    str, missing as NA
Quantity       int64 (negative for cancellations and returns)
InvoiceDate    datetime64[ns], minute resolution
UnitPrice      float64, rounded to 3 decimals
CustomerID     str of five digits such as "12345" (never "12345.0"), missing as NA
Country        str
=============  ==============================================================

Text columns use pandas' ``str`` dtype (missing values are NaN, so ``isna()`` works).

Credit: see :data:`CITATION`.
"""

from __future__ import annotations

import io
import os
import urllib.error
import urllib.request
import uuid
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
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

REPO_ROOT: Path = Path(__file__).resolve().parents[1]
DEFAULT_ROWS = 20_000
DEFAULT_SEED = 42
GENERATOR_VERSION = 1  # part of the cached file name: bump it when generate() changes

UCI_URL = "https://archive.ics.uci.edu/static/public/352/online+retail.zip"
CITATION: str = (
    "Chen, D., Sain, S.L. & Guo, K. (2012). Data mining for the online retail industry: "
    "A case study of RFM model-based customer segmentation using data mining. "
    "Journal of Database Marketing & Customer Strategy Management 19(3), 197-208. "
    "doi:10.1057/dbm.2012.17; UCI Machine Learning Repository, CC BY 4.0"
)

ENCODING = "ISO-8859-1"
DATE_FORMAT = "%m/%d/%Y %H:%M"  # how the CSV spells dates: 12/1/2010 8:26
ENV_VAR = "ECOM_DATASET"


# ---------------------------------------------------------------------------
# Finding, reading and writing files
# ---------------------------------------------------------------------------


def _raw_candidates() -> list[Path]:
    raw = REPO_ROOT / "data" / "raw"
    names = ["data.csv", "data.csv.xz", "data.csv.gz", "data.csv.bz2", "data.csv.zip", "data.zip"]
    return [raw / name for name in names]


def find_dataset(path: str | Path | None = None) -> Path | None:
    """Find the real data file.

    Order: the explicit ``path`` (must exist), then the environment variable
    ``ECOM_DATASET`` (must exist), then ``data/raw/data.csv`` in the repository
    (or ``.csv.xz``/``.csv.gz``/``.csv.bz2``/``.zip``).  Returns None when there is none.
    """
    if path is not None:
        found = Path(path).expanduser()
        if not found.is_file():
            raise FileNotFoundError(
                f"Data file not found: {found}. Pass the path of an existing Kaggle-layout CSV "
                "(plain, .xz, .gz, .bz2 or .zip), or call load() without a path to use the "
                "generated data."
            )
        return found
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        found = Path(env).expanduser()
        if not found.is_file():
            raise FileNotFoundError(
                f"{ENV_VAR} is set to {env!r}, but that file does not exist. Fix the path, "
                f"or unset {ENV_VAR} to use data/raw/data.csv or the generated data."
            )
        return found
    for candidate in _raw_candidates():
        if candidate.is_file():
            return candidate
    return None


def _read_raw(source, nrows: int | None) -> pd.DataFrame:
    """Read a CSV as text only: every column str, empty fields as NA."""
    return pd.read_csv(
        source,
        dtype=str,
        encoding=ENCODING,
        keep_default_na=False,  # a description "NA" is text, not a missing value
        na_values=[""],
        nrows=nrows,
    )


def _csv_member(archive: zipfile.ZipFile) -> str:
    """The one CSV file inside a zip archive (macOS "__MACOSX" extras are ignored)."""
    files = [n for n in archive.namelist() if not n.startswith("__MACOSX") and not n.endswith("/")]
    tables = [n for n in files if n.lower().endswith(".csv")] or files
    if len(tables) != 1:
        raise ValueError(f"Expected exactly one .csv file in the zip archive, found {files}")
    return tables[0]


def read_csv(path: str | Path, nrows: int | None = None) -> pd.DataFrame:
    """Read a Kaggle-layout CSV into the typed frame.

    The file may be plain, .xz, .gz, .bz2, or a .zip holding one .csv.
    ``nrows`` reads only the first rows.
    """
    path = Path(path)
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as archive, archive.open(_csv_member(archive)) as member:
            raw = _read_raw(member, nrows)
    else:
        raw = _read_raw(path, nrows)  # pandas unpacks .xz/.gz/.bz2 by file extension
    return parse(raw)


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


def _price_text(price: float) -> str:
    """Shortest decimal text of a price, like the Kaggle file: 2.55, 0.001, 1 (not 1.0)."""
    text = repr(float(price))
    return text[:-2] if text.endswith(".0") else text


def _format_unique(values: pd.Series, fmt) -> np.ndarray:
    """Apply ``fmt`` once per distinct value (there are few) and spread the result back."""
    codes, uniques = pd.factorize(values)  # missing values get code -1 ...
    texts = [fmt(v) for v in uniques] + [None]  # ... which picks this last None
    return np.array(texts, dtype=object)[codes]


def write_csv(df: pd.DataFrame, path: str | Path, row_ids: bool = False) -> Path:
    """Write the typed frame in the Kaggle layout: ISO-8859-1, CRLF, dates as m/d/YYYY H:MM,
    CustomerID as integer text or empty, UnitPrice as shortest decimal text.
    ``row_ids=True`` adds a last column ``RowId`` (the index labels, as the API client sends).

    The extension picks compression (.xz, .gz, .bz2, .zip).
    ``read_csv(write_csv(df, path))`` equals ``df``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = df[COLUMNS].copy()
    out["InvoiceDate"] = _format_unique(
        df["InvoiceDate"], lambda t: f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}"
    )
    out["UnitPrice"] = _format_unique(df["UnitPrice"], _price_text)
    if row_ids:
        out["RowId"] = df.index.astype(str)
    compression = "infer"  # from the extension
    if path.suffix.lower() == ".zip":  # name the file inside "data.csv" for "data.zip"
        compression = {"method": "zip", "archive_name": Path(path.stem).with_suffix(".csv").name}
    out.to_csv(
        path, index=False, encoding=ENCODING, lineterminator="\r\n", compression=compression
    )
    return path


def _atomic_write_csv(df: pd.DataFrame, path: Path) -> Path:
    """write_csv to a temporary name, then rename: readers never see half a file."""
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp{path.suffix}")
    try:
        write_csv(df, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def default_csv(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> Path:
    """Path of the generated data set as CSV under data/generated/, written on first use."""
    folder = REPO_ROOT / "data" / "generated"
    path = folder / f"online_retail_generated_{rows}rows_seed{seed}_v{GENERATOR_VERSION}.csv"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write_csv(generate(rows, seed), path)
    return path


def load(path: str | Path | None = None, rows: int | None = None) -> pd.DataFrame:
    """The data set the course runs on: the real file if :func:`find_dataset` finds one,
    else the generated default.  ``rows`` keeps only the first N rows (asking for more
    rows than the generated default holds generates a larger data set with the same seed).

    ``df.attrs['source']`` is ``'generated'`` or the path of the file read.
    """
    found = find_dataset(path)
    if found is None:
        size = max(DEFAULT_ROWS, rows or 0)
        df = read_csv(default_csv(rows=size), nrows=rows)
        df.attrs["source"] = "generated"
    else:
        df = read_csv(found, nrows=rows)
        df.attrs["source"] = str(found)
    return df


# ---------------------------------------------------------------------------
# Facts about a frame
# ---------------------------------------------------------------------------


def to_records(df: pd.DataFrame) -> list[dict]:
    """One JSON-ready dict per row, with plain Python values (str, int, float, None).

    InvoiceDate becomes "YYYY-MM-DDTHH:MM:SS"; missing Description/CustomerID become None.
    """
    columns = {
        name: df[name].to_numpy(dtype=object, na_value=None).tolist() for name in TEXT_COLUMNS
    }
    columns["Quantity"] = df["Quantity"].tolist()
    columns["UnitPrice"] = df["UnitPrice"].tolist()  # floats print as the CSV text: 2.55
    columns["InvoiceDate"] = _format_unique(df["InvoiceDate"], lambda t: t.isoformat()).tolist()
    return [dict(zip(COLUMNS, row)) for row in zip(*(columns[name] for name in COLUMNS))]


def summary(df: pd.DataFrame) -> dict:
    """Row count, distinct invoices and distinct (non-missing) customers."""
    return {
        "rows": len(df),
        "invoices": int(df["InvoiceNo"].nunique()),
        "customers": int(df["CustomerID"].nunique()),
    }


def line_total_milli(df: pd.DataFrame) -> pd.Series:
    """Quantity * UnitPrice in whole thousandths of a currency unit (int64).

    Exact: prices have at most 3 decimals, so whole numbers of thousandths have no float drift.
    """
    price_milli = np.rint(df["UnitPrice"].to_numpy(dtype="float64") * 1000).astype("int64")
    return pd.Series(
        df["Quantity"].to_numpy(dtype="int64") * price_milli, index=df.index, name="LineTotalMilli"
    )


def revenue(df: pd.DataFrame) -> Decimal:
    """Exact sum of Quantity * UnitPrice as a Decimal with 3 places."""
    return Decimal(int(line_total_milli(df).sum())).scaleb(-3)


def quality_report(df: pd.DataFrame) -> dict:
    """Data-quality findings for the "know your data" notebook (plain ints, floats, ISO dates)."""
    rows = len(df)
    cancelled = df["InvoiceNo"].str.startswith("C")
    negative = df["Quantity"] < 0
    lines = df.groupby("InvoiceNo", sort=False).size()
    share = (lambda n: float(n) / rows) if rows else (lambda n: 0.0)
    return {
        "rows": rows,
        "invoices": int(df["InvoiceNo"].nunique()),
        "customers": int(df["CustomerID"].nunique()),
        "cancellation_rows": int(cancelled.sum()),
        "cancellation_invoices": int(df.loc[cancelled, "InvoiceNo"].nunique()),
        "negative_quantity_rows": int(negative.sum()),
        "returns_not_cancelled": int((negative & ~cancelled).sum()),
        "missing_customer_rows": int(df["CustomerID"].isna().sum()),
        "missing_customer_share": share(df["CustomerID"].isna().sum()),
        "missing_description_rows": int(df["Description"].isna().sum()),
        "zero_price_rows": int((df["UnitPrice"] == 0).sum()),
        "negative_price_rows": int((df["UnitPrice"] < 0).sum()),
        "duplicate_rows": int(df.duplicated().sum()),
        "repeated_invoice_stock_pairs": int(df.duplicated(["InvoiceNo", "StockCode"]).sum()),
        "lines_per_invoice_median": float(lines.median()) if rows else 0.0,
        "lines_per_invoice_max": int(lines.max()) if rows else 0,
        "single_line_invoice_share": float((lines == 1).mean()) if rows else 0.0,
        "countries": int(df["Country"].nunique()),
        "uk_row_share": share((df["Country"] == "United Kingdom").sum()),
        "first_date": df["InvoiceDate"].min().isoformat() if rows else None,
        "last_date": df["InvoiceDate"].max().isoformat() if rows else None,
    }


# ---------------------------------------------------------------------------
# Download of the real data
# ---------------------------------------------------------------------------


class DownloadError(RuntimeError):
    """The download failed (HTTP error, timeout, unexpected archive)."""


def _fetch(url: str, target: Path, timeout: float) -> None:
    """Stream ``url`` into the file ``target``, printing simple progress."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            size = int(response.headers.get("Content-Length") or 0)
            done, step = 0, 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if size and done * 10 // size > step:
                    step = done * 10 // size
                    print(f"  downloaded {done / 1e6:.1f} of {size / 1e6:.1f} MB", flush=True)
    except urllib.error.HTTPError as err:
        raise DownloadError(
            f"Download of {url} failed: HTTP {err.code} {err.reason}. Check the URL, or download "
            f"the file by hand and point {ENV_VAR} at it."
        ) from err
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(
            f"Download of {url} failed ({reason}); no network or timed out after {timeout} s? "
            f"Download the file by hand and point {ENV_VAR} at it."
        ) from err


def _frame_from_zip(archive_path: Path) -> pd.DataFrame:
    """The typed frame inside a downloaded zip: the UCI .xlsx, or a Kaggle .csv."""
    if not zipfile.is_zipfile(archive_path):
        raise DownloadError(f"The downloaded file is not a zip archive: {archive_path}")
    with zipfile.ZipFile(archive_path) as archive:
        names = [n for n in archive.namelist() if not n.startswith("__MACOSX")]
        sheets = [n for n in names if n.lower().endswith(".xlsx")]
        tables = [n for n in names if n.lower().endswith(".csv")]
        if sheets:
            print(f"  converting {sheets[0]} (a big spreadsheet: a minute or two)", flush=True)
            raw = pd.read_excel(io.BytesIO(archive.read(sheets[0])), engine="openpyxl")
            # spreadsheet times can be a hair off the minute: round to it
            raw["InvoiceDate"] = pd.to_datetime(raw["InvoiceDate"]).dt.round("min")
            return parse(raw)
        if tables:
            with archive.open(tables[0]) as member:
                return parse(_read_raw(member, None))
    raise DownloadError(f"No .xlsx or .csv file in the downloaded archive; it holds {names}")


def download(url: str = UCI_URL, dest: str | Path | None = None, timeout: float = 60) -> Path:
    """Fetch the UCI archive, convert it to the Kaggle CSV layout and write ``dest``
    (default data/raw/data.csv, where :func:`find_dataset` looks).  Returns ``dest``.

    The UCI zip holds "Online Retail.xlsx"; a zip holding a .csv works as well.
    """
    dest = Path(dest) if dest is not None else REPO_ROOT / "data" / "raw" / "data.csv"
    dest.parent.mkdir(parents=True, exist_ok=True)
    archive = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.zip")
    print(f"Downloading {url}", flush=True)
    try:
        _fetch(url, archive, timeout)
        df = _frame_from_zip(archive)
    finally:
        archive.unlink(missing_ok=True)
    _atomic_write_csv(df, dest)
    print(f"Wrote {len(df):,} rows to {dest}", flush=True)
    return dest


# ---------------------------------------------------------------------------
# Synthetic data: constants measured on the real data (aggregates only)
# ---------------------------------------------------------------------------

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

FIRST_DATE = pd.Timestamp("2010-12-01 08:26")
LAST_DATE = pd.Timestamp("2011-12-09 12:50")
FIRST_INVOICE = 536365
REAL_ROWS = REAL_STATS["rows"]

# Rows per month (the shop is busiest before Christmas; December 2011 ends on the 9th).
MONTH_ROWS = {
    "2010-12": 42481, "2011-01": 35147, "2011-02": 27707, "2011-03": 36748,
    "2011-04": 29916, "2011-05": 37030, "2011-06": 36874, "2011-07": 39518,
    "2011-08": 35284, "2011-09": 50226, "2011-10": 60742, "2011-11": 84711,
    "2011-12": 25525,
}  # fmt: skip
# Rows per hour of the day (06:00-20:59) and per weekday (Monday=0; closed on Saturday=5).
HOUR_ROWS = {
    6: 41, 7: 383, 8: 8909, 9: 34332, 10: 49037, 11: 57674, 12: 78709, 13: 72259,
    14: 67471, 15: 77519, 16: 54516, 17: 28509, 18: 7974, 19: 3705, 20: 871,
}  # fmt: skip
WEEKDAY_ROWS = {0: 95111, 1: 101808, 2: 94565, 3: 103857, 4: 82193, 6: 64375}
# Besides Saturdays the shop is closed over Christmas and on UK bank holidays.
BANK_HOLIDAYS = ["2011-04-22", "2011-04-25", "2011-04-29", "2011-05-02", "2011-05-30", "2011-08-29"]
CLOSED_DAYS = list(pd.date_range("2010-12-24", "2011-01-03")) + list(pd.to_datetime(BANK_HOLIDAYS))

# Invoice kinds.  Cancellations ("C" + number, all quantities negative) are 14.8 %
# of invoices; stock adjustments are one-line invoices with price 0 and no customer.
SALE, CANCEL, ADJUST = 0, 1, 2
CANCEL_INVOICE_SHARE = REAL_STATS["cancellation_invoice_share"]
ADJUST_INVOICE_SHARE = 2102 / 25900  # share of invoices that are price-0 adjustments
# Kinds of adjustment lines: (quantity sign, description, share of all rows).  The description
# is the product's, a lower-case stock note, or missing (None).
ADJUSTMENT_KINDS = [
    (+1, "product", 547 / REAL_ROWS),
    (-1, "note", 474 / REAL_ROWS),
    (+1, None, 592 / REAL_ROWS),
    (-1, None, 862 / REAL_ROWS),
]
ADJUSTMENT_NOTES = [
    "stock count correction", "broken in warehouse", "soaked in storeroom leak",
    "sent as sample", "lost in transit", "wrong item picked",
]  # fmt: skip
FREE_LINE_SHARE = 40 / REAL_ROWS  # sale lines given away at price 0

# Lines per invoice, as (v, share of invoices with fewer than v lines).
SALE_LINES = [
    (1, 0.0), (2, 0.0809), (3, 0.1227), (4, 0.1575), (5, 0.1908), (6, 0.2251), (8, 0.2858),
    (10, 0.3464), (12, 0.4012), (15, 0.4769), (20, 0.6), (25, 0.6928), (30, 0.7541),
    (40, 0.8328), (50, 0.8825), (60, 0.9161), (80, 0.9509), (100, 0.9661), (150, 0.9794),
    (200, 0.988), (300, 0.9942), (400, 0.9959), (600, 0.9991), (800, 0.9999), (1115, 1.0),
]  # fmt: skip
CANCEL_LINES = [
    (1, 0.0), (2, 0.5555), (3, 0.757), (4, 0.8611), (5, 0.9002), (6, 0.9273), (8, 0.9557),
    (10, 0.969), (13, 0.9804), (16, 0.9867), (20, 0.9911), (30, 0.9964), (40, 0.999),
    (60, 0.9997), (102, 1.0),
]  # fmt: skip
MAX_LINES = 1114

# Customers: 24.9 % of rows have no CustomerID (whole invoices, mostly big ones).
MISSING_CUSTOMER_SHARE = REAL_STATS["missing_customer_share"]
INVOICES_PER_CUSTOMER = [  # (v, share of customers with fewer than v invoices)
    (1, 0.0), (2, 0.3003), (3, 0.4872), (4, 0.5993), (5, 0.6855), (6, 0.7514), (7, 0.7962),
    (8, 0.8321), (10, 0.8772), (12, 0.9092), (15, 0.9389), (20, 0.9643), (30, 0.9847),
    (40, 0.9911), (60, 0.9963), (100, 0.9986), (150, 0.9993), (249, 1.0),
]  # fmt: skip
MEAN_INVOICES_PER_CUSTOMER = 5.075
CUSTOMER_IDS = (12346, 18287)

# Country shares of rows *with* a customer (smaller countries folded into these),
# and of rows without one (almost all UK).  Overall the UK has 91.4 % of rows.
CUSTOMER_COUNTRIES = {
    "United Kingdom": 0.8895, "Germany": 0.0240, "France": 0.0215, "EIRE": 0.0190,
    "Spain": 0.0064, "Netherlands": 0.0060, "Belgium": 0.0052, "Switzerland": 0.0047,
    "Portugal": 0.0037, "Australia": 0.0032, "Norway": 0.0027, "Italy": 0.0020,
    "Channel Islands": 0.0019, "Finland": 0.0018, "Cyprus": 0.0016, "Sweden": 0.0012,
    "Austria": 0.0010, "Denmark": 0.0010, "Japan": 0.0009, "Poland": 0.0009,
    "USA": 0.0008, "Israel": 0.0005, "Singapore": 0.0004,
}  # fmt: skip
GUEST_COUNTRIES = {
    "United Kingdom": 0.98904, "EIRE": 0.00526, "Hong Kong": 0.00213, "Unspecified": 0.0015,
    "Switzerland": 0.00093, "France": 0.00049, "Israel": 0.00035, "Portugal": 0.00029,
}  # fmt: skip

# Line duplicates inside an invoice (shares of all rows).
DUPLICATE_SHARE = REAL_STATS["duplicate_share"]  # exact copy of an earlier line
REPEAT_SHARE = REAL_STATS["repeated_pair_share"] - DUPLICATE_SHARE  # same product, other quantity

# Products: 4,070 stock codes in the real data.
REAL_PRODUCTS = 4070
# UnitPrice of sale lines, as (share, price) quantile points.
PRICE_QUANTILES = [
    (0.0, 0.10), (0.01, 0.29), (0.05, 0.42), (0.1, 0.65), (0.2, 0.85), (0.25, 1.25),
    (0.3, 1.25), (0.4, 1.65), (0.5, 2.08), (0.6, 2.55), (0.7, 3.75), (0.75, 4.13),
    (0.8, 4.95), (0.9, 7.95), (0.95, 9.95), (0.98, 14.95), (0.99, 16.98), (0.995, 24.96),
    (0.999, 165.0), (1.0, 650.0),
]  # fmt: skip
# How many rows a product has, as (share of products, rows) quantile points: a few best sellers.
POPULARITY_QUANTILES = [
    (0.0, 1), (0.05, 1), (0.1, 3), (0.2, 9), (0.3, 20), (0.4, 37), (0.5, 62), (0.6, 95),
    (0.7, 139), (0.8, 209), (0.9, 346), (0.95, 495), (0.98, 771), (0.99, 988), (0.999, 1630),
    (1.0, 2313),
]  # fmt: skip
# Quantity of a line: share of lines per value (packs of 6, 12, 24 are common).
QUANTITY_SHARES = {
    1: 0.279, 2: 0.154, 3: 0.070, 4: 0.0725, 5: 0.022, 6: 0.077, 7: 0.0055, 8: 0.0247,
    9: 0.0038, 10: 0.042, 11: 0.0018, 12: 0.112, 13: 0.0011, 14: 0.0011, 15: 0.0015,
    16: 0.008, 17: 0.0005, 18: 0.0034, 20: 0.0094, 22: 0.0006, 24: 0.048, 25: 0.0097,
    28: 0.0003, 30: 0.0022, 32: 0.002, 36: 0.0072, 40: 0.002, 48: 0.0114, 50: 0.0017,
    60: 0.0013, 64: 0.0005, 72: 0.0037, 80: 0.0004, 96: 0.0034, 100: 0.0034, 120: 0.0011,
    144: 0.0019, 192: 0.0006, 200: 0.0008, 240: 0.0005, 288: 0.0005, 300: 0.0006,
    400: 0.0004, 480: 0.0004, 600: 0.0003, 1000: 0.0003, 1500: 0.0001, 3000: 0.0001,
}  # fmt: skip
QUANTITY_PRICE_LINK = 0.5  # > 0: cheap products are bought in bigger quantities

# Invented product names: colour + pattern + object ("BLUE ZIGZAG TEAPOT").
COLOURS = [
    "RED", "BLUE", "GREEN", "PINK", "WHITE", "IVORY", "BLACK", "YELLOW", "PURPLE",
    "ORANGE", "SILVER", "GOLD", "CREAM", "LILAC", "TEAL", "MINT",
]  # fmt: skip
PATTERNS = [
    "HONEYCOMB", "ZIGZAG", "MOSAIC", "HOUNDSTOOTH", "CONFETTI", "TERRAZZO", "CHEVRON",
    "SPECKLED", "GINGHAM", "TARTAN", "MARBLED", "ENAMEL", "WOODEN", "CERAMIC", "WICKER",
    "SEERSUCKER",
]  # fmt: skip
OBJECTS = [
    "TEAPOT", "MUG", "CANDLE HOLDER", "LANTERN", "CUSHION COVER", "DOORSTOP", "LUNCH BOX",
    "PHOTO FRAME", "PEG BAG", "BUNTING", "TRINKET BOX", "WALL CLOCK", "NOTEBOOK",
    "GIFT TAG SET", "TEA TOWEL", "STORAGE TIN", "WATERING CAN", "BIRD FEEDER",
    "PLANT POT", "CAKE STAND", "SHOPPING BAG", "COAT HOOK", "DOOR SIGN", "KEY RING",
    "MONEY BOX", "PENCIL CASE", "HOT WATER BOTTLE", "APRON", "BREAD BIN", "SOAP DISH",
    "CUP, SAUCER SET", "NAPKINS, 20 PIECES",
]  # fmt: skip


# ---------------------------------------------------------------------------
# Synthetic data: small helpers
# ---------------------------------------------------------------------------


def _spread(n: int, rng: np.random.Generator) -> np.ndarray:
    """n numbers evenly spread over (0, 1) in random order: exact shares, random order."""
    return (rng.permutation(n) + 0.5) / n


def _draw_int(u: np.ndarray, table: list[tuple[int, float]]) -> np.ndarray:
    """Integers with the distribution of ``table`` [(v, share below v), ...] for uniforms ``u``."""
    values, below = zip(*table)
    return np.floor(np.interp(u, below, values)).astype("int64")


def _draw_quantiles(u: np.ndarray, table: list[tuple[float, float]]) -> np.ndarray:
    """Numbers following the quantile points ``table`` [(share, value), ...] for uniforms ``u``."""
    shares, values = zip(*table)
    return np.interp(u, shares, values)


def _allocate(
    sizes: np.ndarray, shares: dict, rng: np.random.Generator, big_first: bool = False
) -> np.ndarray:
    """Give each item (a customer, an invoice, ...) one key of ``shares`` so that the
    keys' total sizes follow the shares: line the items up in random order and cut
    the line at the shares.  ``big_first`` puts big items early (into the first key)
    more often, so that one big item does not swamp a small key."""
    names = np.array(list(shares), dtype=object)
    bounds = np.cumsum(list(shares.values())) / sum(shares.values())
    if big_first:
        order = np.argsort(np.log(rng.random(len(sizes))) / np.maximum(sizes, 1e-9))[::-1]
    else:
        order = rng.permutation(len(sizes))
    middle = (np.cumsum(sizes[order]) - sizes[order] / 2) / max(sizes.sum(), 1)
    picked = np.empty(len(sizes), dtype=object)
    picked[order] = names[np.minimum(np.searchsorted(bounds, middle), len(names) - 1)]
    return picked


def _shop_price_milli(price: np.ndarray) -> np.ndarray:
    """Round to shop prices in thousandths: 0.42 below 1, else ending in 5 cents (2.55, 7.95)."""
    cents = np.where(price < 1, np.floor(price * 100 + 0.5), np.floor(price * 10 + 0.5) * 10 - 5)
    return np.maximum(cents, 1).astype("int64") * 10


def _invoice_times(lines: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A time for each invoice so that months, weekdays and hours get their share of rows."""
    month = _allocate(lines, MONTH_ROWS, rng)  # "2011-03"
    weekday = _allocate(lines, WEEKDAY_ROWS, rng)
    hour = _allocate(lines, HOUR_ROWS, rng).astype("int64")
    # a random open day of that month and weekday: look it up in a table sorted by
    # "month/weekday" keys such as "2011-03/0" (the Mondays of March 2011)
    days = pd.date_range(FIRST_DATE.normalize(), LAST_DATE.normalize(), freq="D")
    days = days[(days.day_of_week != 5) & ~days.isin(CLOSED_DAYS)]
    table = pd.Series(days, index=days.strftime("%Y-%m/") + days.day_of_week.astype(str))
    table = table.sort_index()
    wanted = [f"{m}/{d}" for m, d in zip(month, weekday)]
    first = table.index.searchsorted(wanted, side="left")
    count = table.index.searchsorted(wanted, side="right") - first
    day = table.to_numpy()[first + (rng.random(len(lines)) * count).astype("int64")]
    # a random minute of that hour, squeezed into the opening times:
    # 06:00-21:00, but the first day opens 08:26 and the last closes 12:50
    minute = np.timedelta64(1, "m")
    offset = hour * 60 + rng.integers(0, 60, len(lines)) - 6 * 60  # minutes after 06:00
    opens = np.maximum(day + 6 * 60 * minute, FIRST_DATE.to_datetime64())
    closes = np.minimum(day + 21 * 60 * minute, LAST_DATE.to_datetime64() + minute)
    when = opens + (offset * (closes - opens) / (15 * 60 * minute)).astype("int64") * minute
    when[np.argmin(when)], when[np.argmax(when)] = FIRST_DATE, LAST_DATE
    return when


# ---------------------------------------------------------------------------
# Synthetic data: products, invoices, lines
# ---------------------------------------------------------------------------


def _make_products(n: int, rng: np.random.Generator) -> dict:
    """A catalogue of n invented products: code, description, price, price rank, popularity."""
    combos = rng.choice(len(COLOURS) * len(PATTERNS) * len(OBJECTS), n, replace=False)
    colour, rest = np.divmod(combos, len(PATTERNS) * len(OBJECTS))
    pattern, thing = np.divmod(rest, len(OBJECTS))
    descriptions = [
        f"{COLOURS[c]} {PATTERNS[p]} {OBJECTS[o]}" for c, p, o in zip(colour, pattern, thing)
    ]
    # numbers 52000-61999: a range the real catalogue does not use, so no code is a real one
    numbers = rng.choice(np.arange(52000, 62000), n, replace=False)
    letters = np.where(rng.random(n) < 0.12, rng.choice(list("ABCDEFGH"), n), "")
    codes = [f"{number}{letter}" for number, letter in zip(numbers, letters)]
    price_rank = _spread(n, rng)  # 0 = cheapest product, 1 = dearest
    popularity = _draw_quantiles(_spread(n, rng), POPULARITY_QUANTILES)
    return {
        "code": np.array(codes, dtype=object),
        "description": np.array(descriptions, dtype=object),
        "price_milli": _shop_price_milli(_draw_quantiles(price_rank, PRICE_QUANTILES)),
        "price_rank": price_rank,
        "weight": popularity / popularity.sum(),
    }


def _invoice_sizes(rows: int, max_lines: int, rng: np.random.Generator):
    """Kinds and line counts of invoices adding up to exactly ``rows`` lines, in random order."""
    n_adjust = round(rows * sum(share for _, _, share in ADJUSTMENT_KINDS))  # one line each
    target = rows - n_adjust
    cancel_share = CANCEL_INVOICE_SHARE / (1 - ADJUST_INVOICE_SHARE)
    guess = target // 20 + 10
    while True:  # draw more invoices than needed, then cut at `target` lines
        kind = np.where(_spread(guess, rng) < cancel_share, CANCEL, SALE)
        u = rng.random(guess)
        lines = np.where(kind == CANCEL, _draw_int(u, CANCEL_LINES), _draw_int(u, SALE_LINES))
        lines = np.minimum(lines, max_lines)
        total = np.cumsum(lines)
        if target == 0 or total[-1] >= target:
            break
        guess *= 2
    keep = int(np.searchsorted(total, target)) + 1 if target else 0
    kind, lines = kind[:keep], lines[:keep]
    if keep:
        lines[-1] -= total[keep - 1] - target  # trim the last invoice to hit `rows` exactly
    kind = np.concatenate([kind, np.full(n_adjust, ADJUST)])
    lines = np.concatenate([lines, np.ones(n_adjust, dtype="int64")])
    order = rng.permutation(len(kind))
    return kind[order], lines[order]


def _make_invoices(rows: int, max_lines: int, rng: np.random.Generator) -> pd.DataFrame:
    """One row per invoice: kind, lines, InvoiceDate, InvoiceNo, CustomerID, Country."""
    kind, lines = _invoice_sizes(rows, max_lines, rng)
    n = len(kind)

    # Time, then invoices in time order.
    when = _invoice_times(lines, rng)
    order = np.argsort(when, kind="stable")
    kind, lines, when = kind[order], lines[order], when[order]

    # Invoice numbers grow with time, with small gaps.
    steps = rng.choice([1, 2, 3], n, p=[0.45, 0.35, 0.2])
    if FIRST_INVOICE + steps.sum() > 999_999:
        steps[:] = 1
    numbers = FIRST_INVOICE + np.cumsum(steps) - steps[0]
    invoice_no = np.array(
        [("C" if k == CANCEL else "") + str(x) for k, x in zip(kind, numbers)], dtype=object
    )

    # Guests (no CustomerID): all adjustments plus invoices picked, big ones more likely,
    # until they hold 24.9 % of the rows.
    guest = kind == ADJUST
    pool = np.flatnonzero(~guest)
    pool = pool[np.argsort(np.log(rng.random(len(pool))) / lines[pool])[::-1]]
    wanted = MISSING_CUSTOMER_SHARE * rows - lines[guest].sum()
    guest[pool[np.cumsum(lines[pool]) - lines[pool] / 2 <= wanted]] = True

    # Customers: a skewed number of invoices each (median 3), spread over the year.
    buyers = np.flatnonzero(~guest)
    n_customers = max(1, round(len(buyers) / MEAN_INVOICES_PER_CUSTOMER))
    per_customer = _draw_int(_spread(n_customers, rng), INVOICES_PER_CUSTOMER)
    slots = np.repeat(np.arange(n_customers), per_customer)
    if len(slots) < len(buyers):
        extra = len(buyers) - len(slots)
        slots = np.concatenate(
            [slots, rng.choice(n_customers, extra, p=per_customer / per_customer.sum())]
        )
    customer = np.full(n, -1)
    customer[buyers] = rng.permutation(slots)[: len(buyers)]
    low, high = CUSTOMER_IDS
    ids = rng.choice(np.arange(low, max(high + 1, low + n_customers)), n_customers, replace=False)

    # Country: fixed per customer; guests have their own (mostly UK) mix.
    country = np.empty(n, dtype=object)
    customer_rows = np.bincount(customer[buyers], weights=lines[buyers], minlength=n_customers)
    by_customer = _allocate(customer_rows, CUSTOMER_COUNTRIES, rng, big_first=True)
    country[buyers] = by_customer[customer[buyers]]
    country[guest] = _allocate(lines[guest], GUEST_COUNTRIES, rng, big_first=True)

    invoices = pd.DataFrame(
        {
            "kind": kind,
            "lines": lines,
            "InvoiceDate": when,
            "InvoiceNo": invoice_no,
            "CustomerID": np.where(guest, None, ids[customer].astype(str).astype(object)),
            "Country": country,
        }
    )
    # The real file is sorted by date, then InvoiceNo as text.
    return invoices.sort_values(["InvoiceDate", "InvoiceNo"], kind="stable", ignore_index=True)


def _pick_products(invoice: np.ndarray, weight: np.ndarray, rng: np.random.Generator):
    """A product for every line, by popularity, never twice in one invoice."""
    product = rng.choice(len(weight), len(invoice), p=weight)
    for _ in range(200):
        clash = pd.Series(invoice * len(weight) + product).duplicated().to_numpy()
        if not clash.any():
            break
        product[clash] = rng.choice(len(weight), int(clash.sum()), p=weight)
    return product


def _draw_quantities(price_rank: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Quantities with QUANTITY_SHARES, bigger for cheap products (rank-mixed)."""
    score = rng.random(len(price_rank)) + QUANTITY_PRICE_LINK * (1 - price_rank)
    u = (np.argsort(np.argsort(score)) + 0.5) / max(len(score), 1)
    values = np.array(list(QUANTITY_SHARES), dtype="int64")
    bounds = np.cumsum(list(QUANTITY_SHARES.values())) / sum(QUANTITY_SHARES.values())
    return values[np.minimum(np.searchsorted(bounds, u), len(values) - 1)]


def generate(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Seeded synthetic data shaped like the real data, as the typed frame.

    Exactly ``rows`` rows, sorted like the real file (by InvoiceDate, then InvoiceNo;
    the lines of an invoice together).  The same ``rows`` and ``seed`` give the same frame.
    """
    if rows < 0:
        raise ValueError("rows must be >= 0")
    if rows == 0:
        return parse(pd.DataFrame({name: pd.Series(dtype=object) for name in COLUMNS}))
    rng = np.random.default_rng(seed)
    n_products = min(REAL_PRODUCTS, max(200, round(REAL_PRODUCTS * (rows / REAL_ROWS) ** 0.4)))
    max_lines = min(MAX_LINES, n_products // 3)
    products = _make_products(n_products, rng)
    invoices = _make_invoices(rows, max_lines, rng)

    # Expand invoices to lines.
    lines = invoices["lines"].to_numpy()
    invoice = np.repeat(np.arange(len(invoices)), lines)
    first_line = np.repeat(np.cumsum(lines) - lines, lines)
    position = np.arange(rows) - first_line  # 0 for the first line of each invoice
    kind = invoices["kind"].to_numpy()[invoice]
    has_customer = invoices["CustomerID"].notna().to_numpy()[invoice]

    product = _pick_products(invoice, products["weight"], rng)
    quantity = _draw_quantities(products["price_rank"][product], rng)
    quantity[kind == CANCEL] *= -1
    price = products["price_milli"][product]
    price[(kind == SALE) & has_customer & (rng.random(rows) < FREE_LINE_SHARE)] = 0
    description = products["description"][product]

    # Adjustments: price 0, found (+) or lost (-) stock, description a note or missing.
    adjust = np.flatnonzero(kind == ADJUST)
    shares = np.array([share for _, _, share in ADJUSTMENT_KINDS])
    which = rng.choice(len(ADJUSTMENT_KINDS), len(adjust), p=shares / shares.sum())
    signs = np.array([sign for sign, _, _ in ADJUSTMENT_KINDS])
    texts = np.array([text for _, text, _ in ADJUSTMENT_KINDS], dtype=object)
    price[adjust] = 0
    quantity[adjust] *= signs[which]
    notes = rng.choice(np.array(ADJUSTMENT_NOTES, dtype=object), len(adjust))
    missing_or_note = np.where(texts[which] == "note", notes, None)
    description[adjust] = np.where(texts[which] == "product", description[adjust], missing_or_note)

    # Some lines repeat an earlier line of their invoice: exactly, or with another quantity.
    later = position > 0
    per_later = rows / max(later.sum(), 1)
    u = rng.random(rows)
    duplicate = later & (u < DUPLICATE_SHARE * per_later)
    repeat = later & ~duplicate & (u < (DUPLICATE_SHARE + REPEAT_SHARE) * per_later)
    copied = duplicate | repeat
    source = first_line + (rng.random(rows) * position).astype("int64")
    while (bad := copied & copied[source]).any():  # copy only from original lines
        source[bad] -= 1
    product[copied] = product[source[copied]]
    description[copied] = description[source[copied]]
    price[copied] = price[source[copied]]
    quantity[duplicate] = quantity[source[duplicate]]
    same = repeat & (quantity == quantity[source])
    quantity[same] += np.sign(quantity[same])

    frame = pd.DataFrame(
        {
            "InvoiceNo": invoices["InvoiceNo"].to_numpy()[invoice],
            "StockCode": products["code"][product],
            "Description": description,
            "Quantity": quantity.astype("int64"),
            "InvoiceDate": invoices["InvoiceDate"].to_numpy()[invoice],
            "UnitPrice": price / 1000,
            "CustomerID": invoices["CustomerID"].to_numpy()[invoice],
            "Country": invoices["Country"].to_numpy()[invoice],
        }
    )
    return parse(frame)
