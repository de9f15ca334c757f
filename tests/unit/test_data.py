"""Tests for ecomlib.data: reading, writing, generating and summarising the Online Retail data.

Tests marked ``real_data`` need the real file in ../shared (next to the repository);
they are skipped without it.  Everything else runs anywhere, without network.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import json
import threading
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecomlib import data, synthetic

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "online_retail"
REAL_FILE = data.REPO_ROOT.parent / "shared" / "data" / "online_retail" / "online_retail_data.csv.xz"
STATS_FILE = SHARED / "stats.json"

TYPED_DTYPES = {
    "InvoiceNo": "str",
    "StockCode": "str",
    "Description": "str",
    "Quantity": "int64",
    "InvoiceDate": "datetime64[ns]",
    "UnitPrice": "float64",
    "CustomerID": "str",
    "Country": "str",
}


def expected_stats() -> dict:
    """Targets for the generator: from the shared stats.json if present, else the module constants."""
    expected = dict(data.REAL_STATS)
    expected["month_shares"] = _shares(synthetic.MONTH_ROWS)
    expected["hour_shares"] = _shares(synthetic.HOUR_ROWS)
    expected["weekday_shares"] = _shares(synthetic.WEEKDAY_ROWS)
    if STATS_FILE.is_file():
        stats = json.loads(STATS_FILE.read_text())
        rows = stats["rows"]
        quantity = stats["quantity"]["quantiles"]
        price = stats["unitprice"]["quantiles"]
        expected.update(
            cancellation_invoice_share=stats["cancellations"]["share_invoices"],
            missing_customer_share=stats["missing"]["CustomerID_share"],
            missing_description_share=stats["missing"]["Description_share"],
            zero_price_share=stats["unitprice_le_0"]["rows_eq_0"] / rows,
            returns_not_cancelled_share=stats["negative_quantity"]["rows_not_C_invoice"] / rows,
            duplicate_share=stats["duplicate_rows"]["share"],
            uk_row_share=stats["top10_countries_row_share"]["United Kingdom"],
            lines_per_invoice_median=stats["lines_per_invoice"]["quantiles"]["0.5"],
            single_line_invoice_share=stats["lines_per_invoice"]["share_single_line_invoices"],
            invoices_per_customer_median=stats["invoices_per_customer"]["quantiles"]["0.5"],
            quantity_quantiles={q: quantity[str(q)] for q in (0.5, 0.75, 0.9, 0.99)},
            unitprice_quantiles={q: price[str(q)] for q in (0.25, 0.5, 0.75, 0.9, 0.99)},
            month_shares=_shares(stats["rows_per_month"]),
            hour_shares=_shares({int(h): n for h, n in stats["rows_per_hour"].items()}),
            weekday_shares=_shares({int(d): n for d, n in stats["rows_per_weekday_0Mon"].items()}),
        )
    return expected


def _shares(counts: dict) -> pd.Series:
    series = pd.Series(counts, dtype=float)
    return series / series.sum()


def raw_frame(rows: list[list[str | None]]) -> pd.DataFrame:
    """A raw frame of strings, as read from a CSV with dtype=str."""
    return pd.DataFrame(rows, columns=data.COLUMNS, dtype=object)


@pytest.fixture(scope="module")
def tricky() -> pd.DataFrame:
    """A small typed frame with every awkward case the CSV layout has to survive."""
    return data.parse(
        raw_frame(
            [
                ["700001", "52001A", "RED MUG, LARGE", "4", "12/1/2010 9:05", "2.55", "19001", "United Kingdom"],
                ["700001", "52002", 'THE "BEST" TEAPOT', "6", "12/1/2010 9:05", "3.39", "19001", "United Kingdom"],
                ["700002", "52003", None, "-3", "12/1/2010 18:05", "0", None, "United Kingdom"],
                ["C700003", "52004", "CAFÉ CRÈME JAR", "-1", "1/31/2011 10:00", "0.001", "19002", "France"],
                ["700004", "52005", "NA", "12", "12/9/2011 12:50", "1", "19003.0", "EIRE"],
            ]
        )
    )


# ---------------------------------------------------------------------------
# parse, write_csv, read_csv
# ---------------------------------------------------------------------------


def test_parse_types_the_raw_strings(tricky):
    assert list(tricky.columns) == data.COLUMNS
    assert {c: str(t) for c, t in tricky.dtypes.items()} == TYPED_DTYPES
    assert tricky["Quantity"].tolist() == [4, 6, -3, -1, 12]
    assert tricky["InvoiceDate"][2] == pd.Timestamp("2010-12-01 18:05")
    assert tricky["UnitPrice"].tolist() == [2.55, 3.39, 0.0, 0.001, 1.0]
    assert tricky["CustomerID"][4] == "19003"  # spreadsheet float text normalised
    assert tricky["CustomerID"].isna().tolist() == [False, False, True, False, False]
    assert tricky["Description"][4] == "NA"  # the text "NA" is not a missing value


def test_parse_accepts_spreadsheet_types():
    sheet = pd.DataFrame(
        {
            "InvoiceNo": [700001, "C700009"],
            "StockCode": [52001, "52001A"],
            "Description": ["A", np.nan],
            "Quantity": [6, -1],
            "InvoiceDate": pd.to_datetime(["2010-12-01 08:26", "2010-12-01 09:41"]),
            "UnitPrice": [2.5500000000000003, 27.5],
            "CustomerID": [19001.0, np.nan],
            "Country": ["United Kingdom", "United Kingdom"],
        }
    )
    typed = data.parse(sheet)
    assert typed["InvoiceNo"].tolist() == ["700001", "C700009"]
    assert typed["StockCode"].tolist() == ["52001", "52001A"]
    assert typed["CustomerID"][0] == "19001" and pd.isna(typed["CustomerID"][1])
    assert typed["UnitPrice"][0] == 2.55
    assert str(typed["InvoiceDate"].dtype) == "datetime64[ns]"


def test_parse_ignores_the_index(tricky):
    raw = raw_frame([["1", "A", "X", str(i), "12/1/2010 8:26", "1.5", None, "UK"] for i in range(3)])
    typed = data.parse(raw.set_axis([7, 3, 5]).iloc[::-1])
    assert typed.index.tolist() == [0, 1, 2]
    assert typed["Quantity"].tolist() == [2, 1, 0]


def test_parse_rejects_missing_columns():
    with pytest.raises(ValueError, match="Country"):
        data.parse(raw_frame([["1"] * 8]).drop(columns="Country"))


def test_write_csv_uses_the_kaggle_layout(tricky, tmp_path):
    path = data.write_csv(tricky, tmp_path / "out.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n")
    assert b"700001,52001A,\"RED MUG, LARGE\",4,12/1/2010 9:05,2.55,19001,United Kingdom\r\n" in raw
    assert b'"THE ""BEST"" TEAPOT"' in raw
    assert b"700002,52003,,-3,12/1/2010 18:05,0,,United Kingdom\r\n" in raw
    assert "CAFÉ CRÈME JAR".encode("ISO-8859-1") in raw  # one byte per accented letter
    assert b",1/31/2011 10:00,0.001,19002,France" in raw
    assert b",12/9/2011 12:50,1,19003,EIRE" in raw  # no "1.0", no "19003.0"


@pytest.mark.parametrize("name", ["out.csv", "out.csv.xz", "out.csv.gz", "out.csv.bz2", "out.zip"])
def test_write_then_read_round_trips(tricky, tmp_path, name):
    back = data.read_csv(data.write_csv(tricky, tmp_path / name))
    pd.testing.assert_frame_equal(back, tricky)


def test_read_csv_from_zip_with_folder_and_nrows(tricky, tmp_path):
    text = data.write_csv(tricky, tmp_path / "plain.csv").read_bytes()
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("__MACOSX/._data.csv", b"junk")
        zf.writestr("online_retail/data.csv", text)
    pd.testing.assert_frame_equal(data.read_csv(archive), tricky)
    assert len(data.read_csv(archive, nrows=2)) == 2
    gz = tmp_path / "data.csv.gz"
    gz.write_bytes(gzip.compress(text))
    pd.testing.assert_frame_equal(data.read_csv(gz, nrows=3), tricky.head(3))


def test_generated_frame_round_trips_through_csv(tmp_path):
    df = data.generate(3000, seed=11)
    pd.testing.assert_frame_equal(data.read_csv(data.write_csv(df, tmp_path / "g.csv.xz")), df)


# ---------------------------------------------------------------------------
# to_records, revenue, summary, quality_report
# ---------------------------------------------------------------------------


def test_to_records_gives_plain_json_values(tricky):
    records = data.to_records(tricky)
    assert len(records) == len(tricky)
    assert records[0] == {
        "InvoiceNo": "700001",
        "StockCode": "52001A",
        "Description": "RED MUG, LARGE",
        "Quantity": 4,
        "InvoiceDate": "2010-12-01T09:05:00",
        "UnitPrice": 2.55,
        "CustomerID": "19001",
        "Country": "United Kingdom",
    }
    assert records[2]["Description"] is None and records[2]["CustomerID"] is None
    allowed = (str, int, float, type(None))
    assert all(type(v) in allowed for record in records for v in record.values())
    text = json.dumps(records)
    assert '"UnitPrice": 2.55' in text and '"UnitPrice": 0.001' in text


def test_revenue_is_exact():
    df = data.parse(raw_frame([["1", "A", "X", "1", "12/1/2010 8:26", "0.1", None, "UK"]] * 3))
    assert sum(df["Quantity"] * df["UnitPrice"]) != 0.3  # floats drift ...
    assert data.revenue(df) == Decimal("0.3")  # ... the Decimal does not
    assert str(data.revenue(df)) == "0.300"
    milli = data.line_total_milli(df)
    assert milli.dtype == "int64" and milli.tolist() == [100, 100, 100]


def test_revenue_with_returns_and_large_numbers(tricky):
    # 4*2.55 + 6*3.39 - 3*0 - 1*0.001 + 12*1 = 42.539
    assert data.revenue(tricky) == Decimal("42.539")
    assert data.line_total_milli(tricky).tolist() == [10200, 20340, 0, -1, 12000]


def test_summary_and_quality_report_count_what_they_say(tricky):
    df = pd.concat([tricky, tricky.iloc[[0]], tricky.iloc[[1]].assign(Quantity=7)], ignore_index=True)
    assert data.summary(df) == {"rows": 7, "invoices": 4, "customers": 3}
    report = data.quality_report(df)
    assert report["duplicate_rows"] == 1  # the exact copy of row 0
    assert report["repeated_invoice_stock_pairs"] == 2  # row 0 again, row 1 with another quantity
    assert report["cancellation_rows"] == 1 and report["cancellation_invoices"] == 1
    assert report["negative_quantity_rows"] == 2 and report["returns_not_cancelled"] == 1
    assert report["missing_customer_rows"] == 1
    assert report["missing_customer_share"] == pytest.approx(1 / 7)
    assert report["missing_description_rows"] == 1
    assert report["zero_price_rows"] == 1 and report["negative_price_rows"] == 0
    assert report["lines_per_invoice_max"] == 4 and report["lines_per_invoice_median"] == 1.0
    assert report["single_line_invoice_share"] == 0.75
    assert report["countries"] == 3 and report["uk_row_share"] == pytest.approx(5 / 7)
    assert report["first_date"] == "2010-12-01T09:05:00"
    assert report["last_date"] == "2011-12-09T12:50:00"
    json.dumps(report)  # plain Python values only


# ---------------------------------------------------------------------------
# generate
# ---------------------------------------------------------------------------


def test_generate_is_deterministic_with_exact_rows_and_dtypes():
    a = data.generate(5000, seed=7)
    pd.testing.assert_frame_equal(a, data.generate(5000, seed=7))
    assert not a.equals(data.generate(5000, seed=8))
    assert len(a) == 5000
    assert {c: str(t) for c, t in a.dtypes.items()} == TYPED_DTYPES


@pytest.mark.parametrize("rows", [0, 1, 2, 37, 999])
def test_generate_small_sizes(rows):
    df = data.generate(rows, seed=3)
    assert len(df) == rows
    assert {c: str(t) for c, t in df.dtypes.items()} == TYPED_DTYPES


def test_generate_default_arguments():
    df = data.generate()
    assert len(df) == data.DEFAULT_ROWS == 20_000
    pd.testing.assert_frame_equal(df.head(50), data.generate(data.DEFAULT_ROWS, data.DEFAULT_SEED).head(50))


@pytest.fixture(scope="module", params=[data.DEFAULT_ROWS, 200_000], ids=["20k", "200k"])
def generated(request) -> pd.DataFrame:
    return data.generate(request.param, seed=data.DEFAULT_SEED)


@pytest.mark.slow
def test_generated_rows_are_valid_for_the_pipeline(generated):
    df = generated
    assert df[["InvoiceNo", "StockCode", "Country", "InvoiceDate"]].notna().all().all()
    assert df["InvoiceNo"].str.fullmatch(r"C?\d{6}").all()
    assert df["StockCode"].str.fullmatch(r"\d{5}[A-Z]?").all()
    assert df["CustomerID"].dropna().str.fullmatch(r"\d{5}").all()
    assert (df["UnitPrice"] >= 0).all()
    assert (df["UnitPrice"] == df["UnitPrice"].round(3)).all()


def test_generated_is_sorted_like_the_real_file(generated):
    df = generated
    key = df[["InvoiceDate", "InvoiceNo"]]
    pd.testing.assert_frame_equal(key.sort_values(["InvoiceDate", "InvoiceNo"], kind="stable"), key)
    starts = (df["InvoiceNo"] != df["InvoiceNo"].shift()).sum()
    assert starts == df["InvoiceNo"].nunique()  # the lines of an invoice are contiguous
    per_invoice = df.groupby("InvoiceNo", sort=False)
    assert (per_invoice["InvoiceDate"].nunique() == 1).all()
    invoices = per_invoice["InvoiceDate"].first().reset_index()
    invoices["number"] = invoices["InvoiceNo"].str.lstrip("C").astype(int)
    assert invoices["number"].is_unique
    assert invoices.sort_values("number")["InvoiceDate"].is_monotonic_increasing  # grow with time
    assert invoices["number"].min() == synthetic.FIRST_INVOICE


def test_generated_invoices_customers_and_products_are_consistent(generated):
    df = generated
    # one customer (or none) per invoice; one country per customer
    assert (df.groupby("InvoiceNo")["CustomerID"].nunique(dropna=False) == 1).all()
    assert (df.groupby("CustomerID")["Country"].nunique() == 1).all()
    # a product has one description on sale lines
    sold = df[df["UnitPrice"] > 0]
    assert (sold.groupby("StockCode")["Description"].nunique(dropna=False) == 1).all()
    # cancellations have only negative quantities
    cancelled = df["InvoiceNo"].str.startswith("C")
    assert (df.loc[cancelled, "Quantity"] < 0).all()
    # missing descriptions come with price 0 and no customer, like in the real data
    no_text = df["Description"].isna()
    assert (df.loc[no_text, "UnitPrice"] == 0).all() and df.loc[no_text, "CustomerID"].isna().all()
    # invented names only: colour + pattern + object, or a lower-case stock note
    products = sold["Description"].drop_duplicates()
    assert products.str.split(" ").str[0].isin(synthetic.COLOURS).all()


def test_generated_time_pattern_matches_the_real_data(generated):
    df, expected = generated, expected_stats()
    dates = df["InvoiceDate"]
    assert dates.min() == pd.Timestamp("2010-12-01 08:26")
    assert dates.max() == pd.Timestamp("2011-12-09 12:50")
    assert (dates.dt.day_of_week != 5).all()  # closed on Saturdays
    assert dates.dt.hour.between(6, 20).all()
    assert not dates.dt.normalize().isin(synthetic.CLOSED_DAYS).any()
    months = dates.dt.strftime("%Y-%m").value_counts(normalize=True)
    diff = (months.reindex(expected["month_shares"].index, fill_value=0) - expected["month_shares"]).abs()
    assert diff.max() < 0.02, diff  # each month's share of rows within +-0.02
    for shares, values in [("hour_shares", dates.dt.hour), ("weekday_shares", dates.dt.day_of_week)]:
        got = values.value_counts(normalize=True).reindex(expected[shares].index, fill_value=0)
        assert (got - expected[shares]).abs().max() < 0.02, shares  # each hour/weekday +-0.02


def test_generated_shares_match_the_real_data(generated):
    df, expected = generated, expected_stats()
    report = data.quality_report(df)
    rows = report["rows"]
    checks = {  # name: (generated, real, tolerance)
        "cancellation invoice share": (
            report["cancellation_invoices"] / report["invoices"],
            expected["cancellation_invoice_share"],
            0.03,
        ),
        "missing customer share": (report["missing_customer_share"], expected["missing_customer_share"], 0.03),
        "UK row share": (report["uk_row_share"], expected["uk_row_share"], 0.03),
        "median lines per invoice": (
            report["lines_per_invoice_median"],
            expected["lines_per_invoice_median"],
            4,
        ),
        "single-line invoice share": (
            report["single_line_invoice_share"],
            expected["single_line_invoice_share"],
            0.05,
        ),
        "zero price share": (report["zero_price_rows"] / rows, expected["zero_price_share"], 0.002),
        "missing description share": (
            report["missing_description_rows"] / rows,
            expected["missing_description_share"],
            0.0015,
        ),
        "returns outside cancellations share": (
            report["returns_not_cancelled"] / rows,
            expected["returns_not_cancelled_share"],
            0.0015,
        ),
        "exact duplicate share": (report["duplicate_rows"] / rows, expected["duplicate_share"], 0.003),
        "repeated (invoice, stock code) share": (
            report["repeated_invoice_stock_pairs"] / rows,
            expected["repeated_pair_share"],
            0.005,
        ),
    }
    for name, (got, real, tolerance) in checks.items():
        assert abs(got - real) <= tolerance, f"{name}: generated {got:.4f}, real {real:.4f} +- {tolerance}"


def test_generated_quantities_prices_and_customers_match_the_real_data(generated):
    df, expected = generated, expected_stats()
    quantity_tolerance = {0.5: 1, 0.75: 3, 0.9: 6, 0.99: 40}
    for q, real in expected["quantity_quantiles"].items():
        assert abs(df["Quantity"].quantile(q) - real) <= quantity_tolerance[q], q
    price_tolerance = {0.25: 0.4, 0.5: 0.4, 0.75: 1.0, 0.9: 2.0, 0.99: 10.0}
    for q, real in expected["unitprice_quantiles"].items():
        assert abs(df["UnitPrice"].quantile(q) - real) <= price_tolerance[q], q
    per_customer = df.dropna(subset=["CustomerID"]).groupby("CustomerID")["InvoiceNo"].nunique()
    assert abs(per_customer.median() - expected["invoices_per_customer_median"]) <= 1
    assert per_customer.max() > 5 * per_customer.median()  # a long tail of loyal customers
    assert 10 <= float(data.revenue(df)) / len(df) <= 30  # real: 17.99 per row


@pytest.mark.slow
def test_generated_full_size_counts_are_like_the_real_data():
    df = data.generate(data.REAL_STATS["rows"], seed=1)
    counts = data.summary(df)
    assert abs(counts["invoices"] / data.REAL_STATS["invoices"] - 1) < 0.05  # 25,900 +- 5 %
    assert abs(counts["customers"] / data.REAL_STATS["customers"] - 1) < 0.05  # 4,372 +- 5 %
    assert abs(df["StockCode"].nunique() / synthetic.REAL_PRODUCTS - 1) < 0.05  # 4,070 +- 5 %
    assert data.quality_report(df)["lines_per_invoice_max"] <= synthetic.MAX_LINES


# ---------------------------------------------------------------------------
# find_dataset, default_csv, load
# ---------------------------------------------------------------------------


@pytest.fixture
def fake_repo(tmp_path, monkeypatch) -> Path:
    """Point REPO_ROOT at an empty folder and clear ECOM_DATASET."""
    monkeypatch.setattr(data, "REPO_ROOT", tmp_path)
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    return tmp_path


def test_find_dataset_precedence(fake_repo, tricky, monkeypatch):
    assert data.find_dataset() is None
    raw = fake_repo / "data" / "raw"
    xz = data.write_csv(tricky, raw / "data.csv.xz")
    assert data.find_dataset() == xz
    plain = data.write_csv(tricky, raw / "data.csv")
    assert data.find_dataset() == plain  # plain data.csv comes first
    env_file = data.write_csv(tricky, fake_repo / "env.csv")
    monkeypatch.setenv(data.ENV_VAR, str(env_file))
    assert data.find_dataset() == env_file  # ECOM_DATASET beats data/raw
    explicit = data.write_csv(tricky, fake_repo / "explicit.csv")
    assert data.find_dataset(explicit) == explicit  # an explicit path beats everything
    assert data.find_dataset(str(explicit)) == explicit


def test_find_dataset_errors(fake_repo, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        data.find_dataset(fake_repo / "nowhere.csv")
    monkeypatch.setenv(data.ENV_VAR, str(fake_repo / "gone.csv"))
    with pytest.raises(FileNotFoundError, match="ECOM_DATASET"):
        data.find_dataset()


def test_default_csv_is_written_once(fake_repo):
    path = data.default_csv(500, seed=3)
    assert path.parent == fake_repo / "data" / "generated"
    assert "500" in path.name and "seed3" in path.name
    pd.testing.assert_frame_equal(data.read_csv(path), data.generate(500, seed=3))
    stamp = path.stat().st_mtime_ns
    assert data.default_csv(500, seed=3) == path and path.stat().st_mtime_ns == stamp
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left


def test_load_generated_and_real(fake_repo, tricky):
    df = data.load(rows=100)
    assert df.attrs["source"] == "generated" and len(df) == 100
    pd.testing.assert_frame_equal(df, data.generate().head(100))
    assert (fake_repo / "data" / "generated").is_dir()
    real = data.write_csv(tricky, fake_repo / "data" / "raw" / "data.csv.gz")
    found = data.load()
    assert found.attrs["source"] == str(real)
    pd.testing.assert_frame_equal(found, tricky, check_flags=False)
    assert len(data.load(real, rows=2)) == 2


# ---------------------------------------------------------------------------
# download, against a local web server only
# ---------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def web(tmp_path):
    """A web server on 127.0.0.1 serving tmp_path/'www'; yields (folder, base URL)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _as_uci_sheet(df: pd.DataFrame) -> bytes:
    """The frame as the UCI spreadsheet stores it: numbers where possible, CustomerID float."""
    sheet = df.copy().astype({"InvoiceNo": object, "StockCode": object})
    for column in ["InvoiceNo", "StockCode"]:
        numeric = sheet[column].str.isdigit()
        sheet.loc[numeric, column] = sheet.loc[numeric, column].astype(int)
    sheet["CustomerID"] = pd.to_numeric(sheet["CustomerID"]).astype(float)
    buffer = io.BytesIO()
    sheet.to_excel(buffer, index=False, sheet_name="Online Retail", engine="openpyxl")
    return buffer.getvalue()


def test_download_uci_zip_with_xlsx(web, tmp_path, capsys):
    folder, url = web
    df = data.generate(300, seed=5)
    with zipfile.ZipFile(folder / "online+retail.zip", "w") as zf:
        zf.writestr("Online Retail.xlsx", _as_uci_sheet(df))
    dest = data.download(f"{url}/online+retail.zip", dest=tmp_path / "out" / "data.csv", timeout=10)
    assert dest == tmp_path / "out" / "data.csv"
    pd.testing.assert_frame_equal(data.read_csv(dest), df)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["data.csv"]  # archive removed
    assert "Wrote 300 rows" in capsys.readouterr().out


def test_download_zip_with_csv(web, tmp_path, tricky):
    folder, url = web
    with zipfile.ZipFile(folder / "kaggle.zip", "w") as zf:
        zf.writestr("data.csv", data.write_csv(tricky, tmp_path / "x.csv").read_bytes())
    dest = data.download(f"{url}/kaggle.zip", dest=tmp_path / "k.csv", timeout=10)
    pd.testing.assert_frame_equal(data.read_csv(dest), tricky)


def test_download_errors_are_clear(web, tmp_path):
    folder, url = web
    with pytest.raises(data.DownloadError, match="HTTP 404"):
        data.download(f"{url}/missing.zip", dest=tmp_path / "a.csv", timeout=10)
    (folder / "page.zip").write_text("not a zip")
    with pytest.raises(data.DownloadError, match="not a zip"):
        data.download(f"{url}/page.zip", dest=tmp_path / "b.csv", timeout=10)
    assert not (tmp_path / "a.csv").exists() and not (tmp_path / "b.csv").exists()


# ---------------------------------------------------------------------------
# The real file (skipped when ../shared is absent)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    if not REAL_FILE.is_file():
        pytest.skip(f"real data not found at {REAL_FILE}")
    return data.read_csv(REAL_FILE)


@pytest.mark.slow
@pytest.mark.real_data
def test_real_file_headline_numbers(real):
    assert {c: str(t) for c, t in real.dtypes.items()} == TYPED_DTYPES
    assert data.summary(real) == {"rows": 541909, "invoices": 25900, "customers": 4372}
    assert data.revenue(real) == Decimal("9747747.934") == data.REAL_STATS["revenue"]
    report = data.quality_report(real)
    assert report["duplicate_rows"] == 5268
    assert report["repeated_invoice_stock_pairs"] == 10684
    assert report["cancellation_rows"] == 9288
    assert report["missing_customer_rows"] == 135080
    assert report["returns_not_cancelled"] == 1336
    assert report["first_date"] == "2010-12-01T08:26:00" and report["last_date"] == "2011-12-09T12:50:00"


@pytest.mark.slow
@pytest.mark.real_data
def test_real_file_to_records_keeps_prices_exact(real):
    text = pd.read_csv(REAL_FILE, usecols=["UnitPrice"], dtype=str, encoding=data.ENCODING)["UnitPrice"]
    records = data.to_records(real)
    assert len(records) == len(text)
    shown = pd.Series([repr(r["UnitPrice"]) for r in records]).str.removesuffix(".0")
    mismatch = shown != text.str.removesuffix(".0")
    assert not mismatch.any(), text[mismatch].head()
    json.dumps(records[:1000])


@pytest.mark.slow
@pytest.mark.real_data
def test_generated_names_and_codes_are_invented(real):
    fake = data.generate(200_000, seed=9)
    real_descriptions = set(real["Description"].dropna().str.strip().str.upper())
    assert not set(fake["Description"].dropna().str.upper()) & real_descriptions
    assert not set(fake["StockCode"]) & set(real["StockCode"].str.upper())


@pytest.mark.slow
@pytest.mark.real_data
def test_real_file_write_csv_reproduces_the_bytes(real, tmp_path):
    import lzma

    out = data.write_csv(real, tmp_path / "copy.csv")
    assert out.read_bytes() == lzma.decompress(REAL_FILE.read_bytes())


def test_the_stream_row_has_the_datasets_columns_and_its_row_id():
    """Two sides of one fact: the columns ecomlib reads (schema.COLUMNS) and the fields a
    function finds in each stream row (lambda_src/shared/rows.FIELDS, packed with every
    function, so it cannot import ecomlib): the same names, in the same order, plus RowId."""
    from ecomlib import schema
    from shared import rows

    assert rows.FIELDS == (*schema.COLUMNS, "RowId")
    assert set(rows.TEXT_FIELDS) | set(rows.OPTIONAL_FIELDS) == set(schema.TEXT_COLUMNS) | {"InvoiceDate", "RowId"}
