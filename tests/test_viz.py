"""Tests for ecomlib.viz: every chart is a Figure with the expected parts, on a small frame."""

from __future__ import annotations

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
