"""Tests for ecomlib.viz: every chart is a Figure with the expected parts, on a small frame."""

from __future__ import annotations

import base64
from decimal import Decimal

import matplotlib.colors as mcolors
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import FancyBboxPatch
from matplotlib.text import Annotation

from ecomlib import data, viz


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return data.generate(2000, seed=1)


@pytest.fixture
def close():
    """Collect figures made by a test and free them afterwards."""
    figures: list[Figure] = []
    yield figures.append
    for fig in figures:
        fig.clear()


def _arrow_colours(fig: Figure) -> list[tuple]:
    ax = fig.axes[0]
    return [mcolors.to_rgba(a.arrow_patch.get_edgecolor()) for a in ax.texts
            if isinstance(a, Annotation) and a.arrow_patch is not None]


def _box_fills(fig: Figure) -> list[tuple]:
    return [p.get_facecolor() for p in fig.axes[0].patches if isinstance(p, FancyBboxPatch)]


def test_architecture_diagram_draws_every_box_arrow_and_stage(close):
    fig = viz.architecture_diagram()
    close(fig)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    texts = [t.get_text() for t in fig.axes[0].texts]
    for stage, _, _ in viz.STAGES:
        assert stage in texts
    assert len(_box_fills(fig)) == len(viz.BOXES)
    assert len(_arrow_colours(fig)) == sum(len(edges) for edges in viz.EDGES.values())
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == [f"{n}  {name}" for n, (name, _) in viz.PIPELINES.items()]
    assert len(set(_arrow_colours(fig))) == len(viz.PIPELINES)  # one colour per pipeline


def test_highlight_colours_one_pipeline_and_greys_the_rest(close):
    plain, focused = viz.architecture_diagram(), viz.architecture_diagram(highlight=2)
    close(plain)
    close(focused)
    grey, green = mcolors.to_rgba(viz.GREY), mcolors.to_rgba(viz.PIPELINES[2][1])
    colours = _arrow_colours(focused)
    assert colours.count(green) == len(viz.EDGES[2])
    assert colours.count(grey) == len(colours) - len(viz.EDGES[2])
    assert _box_fills(focused) != _box_fills(plain)
    assert "pipeline 2" in focused.axes[0].get_title(loc="left")
    with pytest.raises(ValueError, match="highlight"):
        viz.architecture_diagram(highlight=7)


def test_rows_per_month_has_one_bar_per_month(df, close):
    fig = viz.plot_rows_per_month(df)
    close(fig)
    ax = fig.axes[0]
    months = df["InvoiceDate"].dt.to_period("M").nunique()
    assert len(ax.patches) == months == 13
    assert [p.get_height() for p in ax.patches][0] == (df["InvoiceDate"] < "2011-01-01").sum()
    assert ax.get_title() and ax.get_xlabel() and "rows" in ax.get_ylabel()


def test_heatmap_counts_every_row(df, close):
    fig = viz.plot_hour_weekday_heatmap(df)
    close(fig)
    assert len(fig.axes) == 2  # the map and its colour bar
    image = fig.axes[0].images[0]
    assert isinstance(image, AxesImage)
    cells = image.get_array()
    assert cells.shape[0] == 7 and cells.sum() == len(df)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == viz.WEEKDAYS
    assert fig.axes[1].get_ylabel() == "invoice lines (rows)"


def test_lines_per_invoice_is_a_log_histogram_of_all_invoices(df, close):
    fig = viz.plot_lines_per_invoice(df)
    close(fig)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert sum(p.get_height() for p in ax.patches) == df["InvoiceNo"].nunique()
    assert "median" in ax.get_legend().get_texts()[0].get_text()
    assert ax.get_xlabel() and ax.get_ylabel() == "invoices"


@pytest.mark.parametrize("by", ["quantity", "revenue"])
def test_top_products_match_pandas(df, by, close):
    sold = df[~df["InvoiceNo"].str.startswith("C") & (df["Quantity"] > 0) & (df["UnitPrice"] > 0)]
    value = sold["Quantity"] if by == "quantity" else sold["Quantity"] * sold["UnitPrice"]
    expected = (value.groupby(sold["StockCode"]).sum().round(3).rename("v").reset_index()
                .sort_values(["v", "StockCode"], ascending=[False, True]).head(5))
    top = viz.top_products(df, n=5, by=by)
    assert top["StockCode"].tolist() == expected["StockCode"].tolist()
    assert top["value"].round(3).tolist() == expected["v"].tolist()

    fig = viz.plot_top_products(df, n=5, by=by)
    close(fig)
    ax = fig.axes[0]
    widths = [p.get_width() for p in ax.patches][::-1]  # drawn bottom-up: best bar on top
    assert widths == pytest.approx(top["value"].tolist())
    labels = [t.get_text().split()[0] for t in ax.get_yticklabels()][::-1]
    assert labels == top["StockCode"].tolist()
    assert by in ax.get_title() and ax.get_xlabel()


def test_top_products_rejects_unknown_measure(df):
    with pytest.raises(ValueError, match="quantity"):
        viz.top_products(df, by="profit")


def test_countries_bars_and_shares(df, close):
    fig = viz.plot_countries(df, n=4)
    close(fig)
    ax = fig.axes[0]
    counts = df["Country"].value_counts().head(4)
    assert [t.get_text() for t in ax.get_yticklabels()][::-1] == counts.index.tolist()
    assert [p.get_width() for p in ax.patches][::-1] == counts.tolist()
    shares = [t.get_text() for t in ax.texts]
    assert len(shares) == 4 and all(s.endswith("%") for s in shares)


def test_quality_chart_shows_each_finding_as_share_of_rows(df, close):
    report = data.quality_report(df)
    fig = viz.plot_quality(report)
    close(fig)
    ax = fig.axes[0]
    assert len(ax.patches) == len(viz.QUALITY_FINDINGS)
    top = [t.get_text() for t in ax.get_yticklabels()][-1]
    assert top == viz.QUALITY_FINDINGS["missing_customer_rows"]
    width = [p.get_width() for p in ax.patches][-1]
    assert width == pytest.approx(100 * report["missing_customer_rows"] / len(df))
    assert ax.get_xlabel() == "% of rows" and "2,000 rows" in ax.get_title()


def test_figures_are_not_registered_with_pyplot(df, close):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    close(viz.plot_rows_per_month(df))
    assert plt.get_fignums() == before  # so Jupyter shows a returned figure once, not twice


# --------------------------------------------------------------------------------------
# Dashboards (notebook 07): frames shaped like the warehouse's query results
# --------------------------------------------------------------------------------------


def _revenue(sold: pd.DataFrame, keys) -> pd.DataFrame:
    """SUM(quantity * unit_price) per group, as Decimal like the Data API returns it."""
    milli = data.line_total_milli(sold).groupby(keys).sum()
    return milli.map(lambda v: Decimal(int(v)).scaleb(-3)).rename("revenue").reset_index()


@pytest.fixture(scope="module")
def sold(df) -> pd.DataFrame:
    return viz.sales(df)


@pytest.fixture(scope="module")
def frames(sold) -> dict[str, pd.DataFrame]:
    """What the notebook's queries return, computed with pandas from the sale lines."""
    dates = sold["InvoiceDate"]
    products = _revenue(sold, sold["StockCode"].rename("stock_code"))
    products["description"] = products["stock_code"].map(sold.groupby("StockCode")["Description"].max())
    products = products.sort_values(["revenue", "stock_code"], ascending=[False, True]).head(10)
    return {
        "kpis": pd.DataFrame([{"revenue": data.revenue(sold), "lines": len(sold),
                               "invoices": sold["InvoiceNo"].nunique(),
                               "customers": sold["CustomerID"].nunique()}]),
        "day": _revenue(sold, dates.dt.floor("D").rename("period")),
        "month": _revenue(sold, dates.dt.to_period("M").dt.start_time.rename("period")),
        "heatmap": _revenue(sold, [((dates.dt.day_of_week + 1) % 7).rename("dow"),
                                   dates.dt.hour.rename("hour")]),
        "products": products.reset_index(drop=True),
        "countries": _revenue(sold, sold["Country"].rename("country")).sort_values(
            "revenue", ascending=False, ignore_index=True),
    }


def test_revenue_per_day_is_a_line_and_per_month_bars(frames, close):
    day = viz.plot_revenue_over_time(frames["day"], freq="day")
    month = viz.plot_revenue_over_time(frames["month"], freq="month")
    close(day)
    close(month)
    (line,) = day.axes[0].get_lines()
    periods, revenue = frames["day"]["period"], frames["day"]["revenue"].astype(float)
    assert len(line.get_ydata()) == (periods.max() - periods.min()).days + 1  # every day
    assert line.get_ydata().sum() == pytest.approx(revenue.sum())  # days without sales at 0
    assert (line.get_ydata() > 0).sum() == len(frames["day"])
    bars = month.axes[0].patches
    assert len(bars) == len(frames["month"]) == 13
    assert [b.get_height() for b in bars] == pytest.approx(frames["month"]["revenue"].astype(float).tolist())
    assert month.axes[0].get_xticklabels()[0].get_text() == "Dec\n2010"
    for fig, unit in [(day, "day"), (month, "month")]:
        assert fig.axes[0].get_title() == f"Revenue per {unit} (sales)"
        assert fig.axes[0].get_ylabel() == "revenue (GBP)"
    with pytest.raises(ValueError, match="freq"):
        viz.plot_revenue_over_time(frames["day"], freq="week")


def test_revenue_heatmap_puts_redshift_weekdays_in_monday_first_rows(frames, sold, close):
    fig = viz.plot_revenue_heatmap(frames["heatmap"])
    close(fig)
    assert len(fig.axes) == 2  # the map and its colour bar
    cells = fig.axes[0].images[0].get_array()
    assert cells.sum() == pytest.approx(float(data.revenue(sold)))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == viz.WEEKDAYS
    assert cells.shape[1] >= len(viz.OFFICE_HOURS)
    sunday = pd.DataFrame({"dow": [0], "hour": [15], "revenue": [Decimal("2.500")]})
    close(one := viz.plot_revenue_heatmap(sunday))
    cells = one.axes[0].images[0].get_array()
    columns = [t.get_text() for t in one.axes[0].get_xticklabels()]
    assert cells[6, columns.index("15")] == 2.5 and cells.sum() == 2.5  # dow 0 is Sunday, the last row
    assert columns[0] == "07" and columns[-1] == "20"  # office hours, even for one sale
    assert fig.axes[1].get_ylabel() == "revenue (GBP)"


def test_weekday_revenue_has_seven_bars_monday_first(frames, close):
    weekday = frames["heatmap"].groupby("dow", as_index=False)["revenue"].sum()
    fig = viz.plot_weekday_revenue(weekday)
    close(fig)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert [t.get_text() for t in ax.get_xticklabels()] == viz.WEEKDAYS
    by_dow = dict(zip(weekday["dow"], weekday["revenue"].astype(float)))
    assert heights == pytest.approx([by_dow.get(d, 0.0) for d in viz.REDSHIFT_DOW])
    assert heights[5] == 0  # no sales on Saturday in this data


def test_ranking_keeps_the_frame_order_and_every_bar(close):
    frame = pd.DataFrame({"stock_code": ["B", "A", "C"], "description": ["SAME NAME", "SAME NAME", None],
                          "revenue": [Decimal("30.000"), Decimal("20.000"), Decimal("10.000")]})
    fig = viz.plot_ranking(frame, "product", "revenue", "Top 3", "revenue (GBP)")
    close(fig)
    ax = fig.axes[0]
    widths = [p.get_width() for p in ax.patches]
    assert widths == [30.0, 20.0, 10.0]  # drawn first row first, on top
    tops = sorted(zip([p.get_y() for p in ax.patches], widths), reverse=True)
    assert [w for _, w in tops] == [30.0, 20.0, 10.0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["B  SAME NAME", "A  SAME NAME", "C  "]  # equal descriptions stay two bars
    assert [t.get_text() for t in ax.texts] == ["30", "20", "10"]
    assert ax.get_title() == "Top 3" and ax.get_xlabel() == "revenue (GBP)"
    close(plain := viz.plot_ranking(frame.assign(n=[3, 2, 1]), "stock_code", "n"))
    assert [t.get_text() for t in plain.axes[0].get_yticklabels()] == ["B", "A", "C"]


def test_country_revenue_splits_the_home_country_from_the_rest(frames, close):
    fig = viz.plot_country_revenue(frames["countries"], n=5)
    close(fig)
    left, right = fig.axes
    total = frames["countries"]["revenue"].astype(float).sum()
    uk = float(frames["countries"].set_index("country")["revenue"]["United Kingdom"])
    assert [p.get_width() for p in left.patches] == pytest.approx([uk, total - uk])
    shares = [float(t.get_text().rstrip(" %")) for t in left.texts]
    assert sum(shares) == pytest.approx(100, abs=0.11)
    others = [t.get_text() for t in right.get_yticklabels()]
    assert "United Kingdom" not in others and len(others) == 5
    assert others == frames["countries"]["country"].drop(0).head(5).tolist()


def test_rfm_segments_count_customers_and_draw_each(close):
    rfm = pd.DataFrame({
        "customer_id": ["1", "2", "3", "4", "5"], "recency": [1, 5, 200, 300, 2],
        "frequency": [9, 1, 7, 1, 4],
        "monetary": [Decimal("900.000"), Decimal("10.000"), Decimal("500.000"), Decimal("5.000"),
                     Decimal("85.000")],
        "segment": ["loyal", "promising", "at risk", "hibernating", "loyal"]})
    fig = viz.plot_rfm_segments(rfm)
    close(fig)
    left, right = fig.axes
    assert [t.get_text() for t in left.get_yticklabels()] == list(viz.RFM_SEGMENTS)
    assert [p.get_width() for p in left.patches] == [2, 1, 1, 1]
    assert left.texts[0].get_text() == "2  (66 % of revenue)"  # 985 of 1,500
    assert len(right.collections) == 4 and right.get_yscale() == "log"
    legend = [t.get_text() for t in right.get_legend().get_texts()]
    assert legend == list(viz.RFM_SEGMENTS)
    assert "recency" in right.get_xlabel() and "monetary" in right.get_ylabel()


def test_dashboard_has_four_panels(frames, close):
    fig = viz.dashboard(frames["kpis"], frames["day"], frames["heatmap"], frames["products"],
                        title="Sales: all")
    close(fig)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5  # four panels and the heatmap's colour bar
    kpis, over_time, products, heatmap = fig.axes[:4]
    tiles = [t.get_text() for t in kpis.texts]
    revenue = float(frames["kpis"]["revenue"][0])
    assert f"£{revenue:,.2f}" in tiles and f"{frames['kpis']['invoices'][0]:,}" in tiles
    assert "average invoice" in tiles
    assert over_time.get_title() == "Revenue per day (sales)"
    assert len(products.patches) == 10 and products.get_title() == "Top 10 products by revenue"
    assert heatmap.images and fig.get_suptitle() == "Sales: all"


def test_dashboard_of_an_empty_selection_says_so(frames, close):
    empty = {name: frame.iloc[:0] for name, frame in frames.items()}
    fig = viz.dashboard(empty["kpis"], empty["day"], empty["heatmap"], empty["products"])
    close(fig)
    assert len(fig.axes) == 4  # no colour bar without a map
    messages = [t.get_text() for ax in fig.axes[1:] for t in ax.texts]
    assert messages == ["no sales in this selection"] * 3
    assert "£0.00" in [t.get_text() for t in fig.axes[0].texts]


def test_figure_html_embeds_the_png(frames, close):
    fig = viz.plot_revenue_over_time(frames["month"], freq="month")
    close(fig)
    page = viz.figure_html(fig, "Sales <2011>")
    assert page.startswith("<!DOCTYPE html>") and "<title>Sales &lt;2011&gt;</title>" in page
    encoded = page.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(encoded).startswith(b"\x89PNG")


def test_dashboard_figures_are_not_registered_with_pyplot(frames, close):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    close(viz.dashboard(frames["kpis"], frames["day"], frames["heatmap"], frames["products"]))
    assert plt.get_fignums() == before
