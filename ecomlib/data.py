"""Load, parse and generate the UCI "Online Retail" data.

The course runs on the "Online Retail" data set: one row per invoice line of a
UK online gift shop, 1 Dec 2010 - 9 Dec 2011 (541,909 rows).  We use the layout
of the popular Kaggle copy ``data.csv``::

    InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country

(ISO-8859-1 text, CRLF line ends, dates like ``12/1/2010 8:26``).

The real file is not part of this repository.  When it is missing, the course
uses a *synthetic* data set made by :func:`generate` (``ecomlib.synthetic``):
invented products and customers, but shaped like the real data (seasonality,
invoice sizes, cancellations, missing customers, duplicates, ...), from aggregate
statistics of the real data only.

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

from ecomlib import synthetic
# The columns, the typed frame and the reference figures live one layer down (``schema``),
# shared with the generator; they stay reachable here as ``data.COLUMNS``, ``data.parse``...
from ecomlib.schema import (COLUMNS, DATE_FORMAT, DEFAULT_ROWS, DEFAULT_SEED, REAL_STATS, TEXT,  # noqa: F401
                            TEXT_COLUMNS, parse)

REPO_ROOT: Path = Path(__file__).resolve().parents[1]
GENERATOR_VERSION = 1  # part of the cached file name: bump it when generate() changes

UCI_URL = "https://archive.ics.uci.edu/static/public/352/online+retail.zip"
CITATION: str = (
    "Chen, D., Sain, S.L. & Guo, K. (2012). Data mining for the online retail industry: "
    "A case study of RFM model-based customer segmentation using data mining. "
    "Journal of Database Marketing & Customer Strategy Management 19(3), 197-208. "
    "doi:10.1057/dbm.2012.17; UCI Machine Learning Repository, CC BY 4.0"
)

ENCODING = "ISO-8859-1"
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
# Synthetic data
# ---------------------------------------------------------------------------

def generate(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Seeded synthetic data shaped like the real data, as the typed frame (see
    :mod:`ecomlib.synthetic`). The same ``rows`` and ``seed`` give the same frame."""
    return synthetic.generate(rows, seed)
