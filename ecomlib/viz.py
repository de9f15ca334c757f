"""Charts for the course notebooks: the architecture diagram and a first look at the data.

Every function builds a new :class:`matplotlib.figure.Figure` and returns it; nothing is
shown and nothing touches pyplot's global state.  In a notebook, leave the returned
figure as the last expression of a cell and Jupyter draws it once::

    from ecomlib import data, viz

    viz.architecture_diagram(highlight=2)        # "you are here": pipeline 2
    viz.plot_top_products(data.load(), by="revenue")

Save one with ``fig.savefig("top.png", dpi=150, bbox_inches="tight")``.

Main entry points:

- :func:`architecture_diagram`   the six pipelines on the DS Blueprint stages
- :func:`plot_rows_per_month`, :func:`plot_hour_weekday_heatmap`,
  :func:`plot_lines_per_invoice`, :func:`plot_top_products`, :func:`plot_countries`,
  :func:`plot_quality`            charts of the Online Retail data (``ecomlib.data``)
- :func:`sales`, :func:`top_products`   the numbers behind the product charts
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Rectangle

from ecomlib import registry
from ecomlib.data import line_total_milli

GREY = "#b9b9b9"
INK = "#222222"
BAR = "#4c72b0"  # one colour for the data charts
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


# --------------------------------------------------------------------------------------
# The architecture diagram
# --------------------------------------------------------------------------------------

# The DS Blueprint stages: (name, left edge, right edge) in diagram units.
STAGES: list[tuple[str, float, float]] = [
    ("Connect", 0.0, 4.6),
    ("Buffer", 4.6, 6.4),
    ("Processing", 6.4, 8.6),
    ("Store", 8.6, 11.6),
    ("Visualize", 11.6, 15.0),
]

# Fill colours by kind of service (loosely AWS's own icon colours).
KIND_COLOURS = {
    "client": "#eeeeee",
    "api": "#f6d0e1",
    "compute": "#fbd9b5",
    "stream": "#ddd0f2",
    "storage": "#cde8c8",
    "database": "#c9dbf2",
}

# The pipelines of ecomlib.registry: number -> (title, colour).
PIPELINES: dict[int, tuple[str, str]] = {p.number: (p.diagram.title, p.diagram.colour) for p in registry.PIPELINES}


@dataclass(frozen=True)
class Box:
    """One service in the diagram: centre (x, y), label, kind (for the fill colour), width."""

    x: float
    y: float
    label: str
    kind: str
    width: float = 1.3


BOX_HEIGHT = 0.9

# Rows (y): 6.1 raw S3 | 4.7 ingestion, DynamoDB, visualization API | 3.2 batch | 1.7 warehouse
BOXES: dict[str, Box] = {
    "client": Box(0.65, 4.7, "Python client\n(CSV rows)", "client", 1.1),
    "api_post": Box(2.2, 4.7, "API Gateway\nPOST /invoices", "api", 1.3),
    "lambda_ingest": Box(3.75, 4.7, "Lambda\ningest", "compute", 1.0),
    "kinesis": Box(5.5, 4.7, "Kinesis\nData Stream", "stream", 1.3),
    "lambda_raw": Box(7.5, 6.1, "Lambda\nto S3", "compute"),
    "s3_raw": Box(10.1, 6.1, "S3 raw\nJSON Lines, partitioned keys", "storage", 2.5),
    "lambda_tables": Box(7.5, 4.7, "Lambda\nto DynamoDB", "compute"),
    "dynamodb": Box(10.1, 4.7, "DynamoDB\nCustomers (by CustomerID)\nInvoices (by InvoiceNo)",
                    "database", 2.5),
    "lambda_read": Box(12.3, 4.7, "Lambda\nread", "compute", 1.0),
    "api_get": Box(14.15, 4.7, "API Gateway\nGET /invoices", "api", 1.4),
    "eventbridge": Box(2.2, 3.2, "EventBridge\nschedule rule", "api"),
    "lambda_batch": Box(7.5, 3.2, "Lambda\nbatch", "compute"),
    "s3_batch": Box(9.35, 3.2, "S3\nbatch files", "storage", 1.0),
    "firehose": Box(5.5, 1.7, "Kinesis Data\nFirehose", "stream", 1.3),
    "s3_stage": Box(9.35, 1.7, "S3\nstaging", "storage", 1.0),
    "redshift": Box(10.85, 1.7, "Redshift\nwarehouse", "database", 1.0),
    "dashboards": Box(13.3, 1.7, "Dashboards\n(Tableau's role)", "client", 1.6),
}

# Arrows of each pipeline (from box, to box, label on the arrow or ""), as declared.
EDGES: dict[int, list[tuple[str, str, str]]] = {p.number: list(p.diagram.edges) for p in registry.PIPELINES}
# Where the number badge sits on a pipeline's first arrow (0 = tail, 1 = head).
BADGE_AT = {p.number: p.diagram.badge_at for p in registry.PIPELINES}


def _members(pipeline: int) -> set[str]:
    """The boxes a pipeline passes through."""
    return {name for edge in EDGES[pipeline] for name in edge[:2]}


def _anchor(box: Box, towards: Box) -> tuple[float, float]:
    """Where an arrow from ``box`` towards ``towards`` leaves the box's edge."""
    dx, dy = towards.x - box.x, towards.y - box.y
    half_w, half_h = box.width / 2, BOX_HEIGHT / 2
    scale = min(half_w / abs(dx) if dx else np.inf, half_h / abs(dy) if dy else np.inf)
    return box.x + dx * scale, box.y + dy * scale


def _draw_stages(ax: Axes) -> None:
    """Shaded columns, one per DS Blueprint stage, with the stage name on top."""
    for i, (name, left, right) in enumerate(STAGES):
        shade = "#f4f6f9" if i % 2 == 0 else "#ffffff"
        ax.add_patch(Rectangle((left, 1.0), right - left, 6.3, color=shade, zorder=0))
        ax.text((left + right) / 2, 7.0, name, ha="center", va="center",
                fontsize=12, fontweight="bold", color="#44546a")


def _draw_box(ax: Axes, box: Box, active: bool) -> None:
    """One service box: coloured when active, grey otherwise."""
    fill = KIND_COLOURS[box.kind] if active else "#f2f2f2"
    ax.add_patch(FancyBboxPatch(
        (box.x - box.width / 2, box.y - BOX_HEIGHT / 2), box.width, BOX_HEIGHT,
        boxstyle="round,pad=0.02,rounding_size=0.12", facecolor=fill,
        edgecolor=INK if active else GREY, linewidth=1.2, zorder=2,
    ))
    ax.text(box.x, box.y, box.label, ha="center", va="center", fontsize=8.5, zorder=3,
            color=INK if active else "#9a9a9a")


def _draw_edge(ax: Axes, start: str, end: str, label: str, colour: str, width: float) -> None:
    """An arrow between two boxes, with an optional small label above its middle."""
    a, b = BOXES[start], BOXES[end]
    tail, head = _anchor(a, b), _anchor(b, a)
    ax.annotate("", xy=head, xytext=tail, zorder=1,
                arrowprops={"arrowstyle": "-|>", "color": colour, "lw": width,
                            "shrinkA": 2, "shrinkB": 2, "mutation_scale": 14})
    if label:
        mid_x, mid_y = (tail[0] + head[0]) / 2, (tail[1] + head[1]) / 2
        ax.text(mid_x, mid_y + 0.14, label, ha="center", va="bottom", fontsize=7.5,
                color=colour, zorder=3, style="italic")


def _badge(ax: Axes, pipeline: int, colour: str) -> None:
    """The pipeline's number in a circle on its first arrow."""
    start, end, _ = EDGES[pipeline][0]
    (x0, y0), (x1, y1) = _anchor(BOXES[start], BOXES[end]), _anchor(BOXES[end], BOXES[start])
    t = BADGE_AT.get(pipeline, 0.5)
    ax.text(x0 + t * (x1 - x0), y0 + t * (y1 - y0), str(pipeline), ha="center", va="center",
            fontsize=9, fontweight="bold", color="white", zorder=4,
            bbox={"boxstyle": "circle,pad=0.25", "facecolor": colour, "edgecolor": "none"})


def architecture_diagram(highlight: int | None = None) -> Figure:
    """The six pipelines of the course as boxes and arrows, in DS Blueprint columns.

    ``highlight=n`` (1-6) draws pipeline n in colour and greys the rest: "you are here".
    """
    if highlight is not None and highlight not in PIPELINES:
        raise ValueError(f"highlight must be one of {sorted(PIPELINES)} or None, not {highlight!r}")
    fig = Figure(figsize=(13, 6), layout="constrained")
    ax = fig.add_subplot()
    ax.set(xlim=(0, 15), ylim=(0.75, 7.4))
    ax.axis("off")
    _draw_stages(ax)

    active = _members(highlight) if highlight else set(BOXES)
    for name, box in BOXES.items():
        _draw_box(ax, box, name in active)
    # grey pipelines first, so the highlighted one is drawn on top
    order = sorted(PIPELINES, key=lambda n: n == highlight)
    for n in order:
        on = highlight in (None, n)
        colour = PIPELINES[n][1] if on else GREY
        for start, end, label in EDGES[n]:
            _draw_edge(ax, start, end, label if on else "", colour, 2.6 if n == highlight else 1.6)
        _badge(ax, n, colour)

    handles = [Rectangle((0, 0), 1, 1, color=colour if highlight in (None, n) else GREY)
               for n, (_, colour) in PIPELINES.items()]
    labels = [f"{n}  {name}" for n, (name, _) in PIPELINES.items()]
    ax.legend(handles, labels, loc="lower center", ncol=6, frameon=False, fontsize=9,
              bbox_to_anchor=(0.5, -0.04), handlelength=1.2)
    if highlight:
        title = f"You are here: pipeline {highlight}, {PIPELINES[highlight][0]}"
    else:
        title = "The six pipelines of the course, on the DS Blueprint"
    ax.set_title(title, fontsize=13, loc="left")
    return fig


# --------------------------------------------------------------------------------------
# The numbers behind the product charts
# --------------------------------------------------------------------------------------


def sales(df: pd.DataFrame) -> pd.DataFrame:
    """Only the sale lines: not cancelled (InvoiceNo without "C"), Quantity > 0, UnitPrice > 0."""
    cancelled = df["InvoiceNo"].str.startswith("C")
    return df[~cancelled & (df["Quantity"] > 0) & (df["UnitPrice"] > 0)]


def top_products(df: pd.DataFrame, n: int = 10, by: str = "quantity") -> pd.DataFrame:
    """The n best-selling products among the sale lines, best first.

    ``by="quantity"`` ranks by units sold, ``by="revenue"`` by exact revenue (currency
    units, from :func:`ecomlib.data.line_total_milli`).  Ties are broken by StockCode.
    Columns: StockCode, Description (its most frequent one), value.
    """
    if by not in ("quantity", "revenue"):
        raise ValueError(f'by must be "quantity" or "revenue", not {by!r}')
    sold = sales(df)
    value = sold["Quantity"] if by == "quantity" else line_total_milli(sold)
    totals = value.groupby(sold["StockCode"]).sum().rename("value").reset_index()
    totals = totals.sort_values(["value", "StockCode"], ascending=[False, True]).head(n)
    if by == "revenue":
        totals["value"] = totals["value"] / 1000
    names = sold.groupby("StockCode")["Description"].agg(
        lambda s: s.mode().iloc[0] if s.notna().any() else "")
    totals.insert(1, "Description", totals["StockCode"].map(names))
    return totals.reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Charts of the data
# --------------------------------------------------------------------------------------


def _new(figsize: tuple[float, float] = (10, 4.5)) -> tuple[Figure, Axes]:
    """A new figure with one axes (not registered with pyplot)."""
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def plot_rows_per_month(df: pd.DataFrame) -> Figure:
    """Bar chart: invoice lines (rows) per calendar month."""
    months = df["InvoiceDate"].dt.to_period("M")
    counts = months.value_counts().sort_index()
    fig, ax = _new()
    ax.bar([p.strftime("%b\n%Y") for p in counts.index], counts.to_numpy(), color=BAR)
    ax.set_title("Invoice lines per month")
    ax.set_xlabel("month")
    ax.set_ylabel("invoice lines (rows)")
    ax.tick_params(axis="x", labelsize=8)
    return fig


def plot_hour_weekday_heatmap(df: pd.DataFrame) -> Figure:
    """Heatmap: invoice lines by weekday (rows) and hour of the day (columns)."""
    dates = df["InvoiceDate"]
    hours = range(int(dates.dt.hour.min()), int(dates.dt.hour.max()) + 1) if len(df) else []
    table = pd.crosstab(dates.dt.day_of_week, dates.dt.hour)
    table = table.reindex(index=range(7), columns=list(hours), fill_value=0)
    fig, ax = _new((10, 4))
    image = ax.imshow(table.to_numpy(), aspect="auto", cmap="Blues")
    ax.set_xticks(range(len(table.columns)), [f"{h:02d}" for h in table.columns])
    ax.set_yticks(range(7), WEEKDAYS)
    ax.set_title("When are invoices written? Invoice lines by weekday and hour")
    ax.set_xlabel("hour of the day (shop's local time)")
    ax.set_ylabel("weekday")
    fig.colorbar(image, ax=ax, label="invoice lines (rows)")
    return fig


def plot_lines_per_invoice(df: pd.DataFrame) -> Figure:
    """Histogram of the number of lines per invoice, on logarithmic bins and axis."""
    lines = df.groupby("InvoiceNo").size()
    top = max(int(lines.max()) if len(lines) else 1, 2)
    bins = np.unique(np.round(np.geomspace(1, top + 1, 30)))
    fig, ax = _new()
    ax.hist(lines, bins=bins, color=BAR, edgecolor="white")
    ax.set_xscale("log")
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if t <= top]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    median = float(lines.median()) if len(lines) else 0.0
    ax.axvline(median, color=INK, linestyle="--", linewidth=1.2,
               label=f"median: {median:g} lines")
    ax.legend()
    ax.set_title("How many lines does an invoice have?")
    ax.set_xlabel("lines per invoice (log scale)")
    ax.set_ylabel("invoices")
    return fig


def plot_top_products(df: pd.DataFrame, n: int = 10, by: str = "quantity") -> Figure:
    """Horizontal bars: the n best-selling products (sale lines only) by quantity or revenue."""
    top = top_products(df, n, by)
    labels = [f"{code}  {text[:32]}" for code, text in zip(top["StockCode"], top["Description"])]
    fig, ax = _new((10, 0.45 * max(len(top), 1) + 1.5))
    ax.barh(labels[::-1], top["value"].to_numpy()[::-1], color=BAR)
    ax.set_title(f"Top {n} products by {by} (sale lines only)")
    ax.set_xlabel("units sold" if by == "quantity" else "revenue (GBP)")
    ax.set_ylabel("product (StockCode, description)")
    ax.tick_params(axis="y", labelsize=8)
    return fig


def plot_countries(df: pd.DataFrame, n: int = 10) -> Figure:
    """Horizontal bars: invoice lines of the n countries with the most, with their share."""
    counts = df["Country"].value_counts()
    top = counts.head(n)
    fig, ax = _new((10, 0.4 * max(len(top), 1) + 1.5))
    bars = ax.barh(top.index[::-1], top.to_numpy()[::-1], color=BAR)
    shares = [f"{100 * v / max(len(df), 1):.1f} %" for v in top.to_numpy()[::-1]]
    ax.bar_label(bars, shares, padding=3, fontsize=8)
    ax.set_xlim(0, top.max() * 1.12 if len(top) else 1)
    ax.set_title(f"Top {n} of {len(counts)} countries by invoice lines")
    ax.set_xlabel("invoice lines (rows)")
    ax.set_ylabel("country")
    return fig


# Findings of ecomlib.data.quality_report() counted in rows, and how the chart names them.
QUALITY_FINDINGS: dict[str, str] = {
    "missing_customer_rows": "no CustomerID (guest)",
    "cancellation_rows": "cancellation (InvoiceNo C...)",
    "repeated_invoice_stock_pairs": "StockCode repeated in its invoice",
    "duplicate_rows": "exact duplicate of a line",
    "zero_price_rows": "UnitPrice is 0",
    "returns_not_cancelled": "negative Quantity, not cancelled",
    "missing_description_rows": "no Description",
    "negative_price_rows": "UnitPrice below 0",
}


def plot_quality(report: dict) -> Figure:
    """Horizontal bars: each data-quality finding of ``data.quality_report`` as % of rows."""
    rows = max(int(report["rows"]), 1)
    keys = [k for k in QUALITY_FINDINGS if k in report]
    shares = [100 * report[k] / rows for k in keys]
    fig, ax = _new((10, 0.45 * len(keys) + 1.5))
    bars = ax.barh([QUALITY_FINDINGS[k] for k in keys][::-1], shares[::-1], color="#c44e52")
    ax.bar_label(bars, [f"{s:.2f} %" for s in shares[::-1]], padding=3, fontsize=8)
    ax.set_xlim(0, max(shares + [1]) * 1.15)
    ax.set_title(f"Data-quality findings, as % of {report['rows']:,} rows")
    ax.set_xlabel("% of rows")
    return fig


# --------------------------------------------------------------------------------------
# Dashboards: charts of warehouse query results (notebook 07)
# --------------------------------------------------------------------------------------
# These take the DataFrames that ecomlib.redshift.sql() returns: lower-case column
# names, money as Decimal, timestamps as datetime64. Each panel is drawn by a private
# _draw_* function on a given Axes, so a chart on its own and the 2x2 dashboard share it.

# Redshift's EXTRACT(dow FROM ...) numbers Sunday 0 ... Saturday 6; the charts show
# Monday first, so row i of a weekday chart is dow REDSHIFT_DOW[i].
REDSHIFT_DOW = [1, 2, 3, 4, 5, 6, 0]
OFFICE_HOURS = range(7, 21)  # the hours a weekday x hour chart always shows (07:00-20:59)

# RFM segments, in the order the charts show them, with a colour and a meaning.
RFM_SEGMENTS: dict[str, tuple[str, str]] = {
    "loyal": ("#2ca02c", "bought recently and often (R 3-4, F 3-4)"),
    "promising": ("#1f77b4", "bought recently, not often yet (R 3-4, F 1-2)"),
    "at risk": ("#ff7f0e", "bought often, but not lately (R 1-2, F 3-4)"),
    "hibernating": ("#7f7f7f", "neither recently nor often (R 1-2, F 1-2)"),
}


def _floats(column: pd.Series) -> np.ndarray:
    """Decimal (or int) values as floats for drawing; NULL becomes 0."""
    return column.astype(float).fillna(0.0).to_numpy()


def _empty(ax: Axes, title: str) -> None:
    """A panel that says there is nothing to show."""
    ax.text(0.5, 0.5, "no sales in this selection", ha="center", va="center",
            transform=ax.transAxes, color="#777777")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_revenue_over_time(ax: Axes, frame: pd.DataFrame, freq: str) -> None:
    """Revenue per day (a line, at 0 on the days without sales) or per month (bars)."""
    import matplotlib.dates as mdates

    title = f"Revenue per {freq} (sales)"
    if frame.empty:
        _empty(ax, title)
        return
    periods, revenue = pd.to_datetime(frame["period"]), _floats(frame["revenue"])
    if freq == "month":
        ax.bar([p.strftime("%b\n%Y") for p in periods], revenue, color=BAR)
        ax.tick_params(axis="x", labelsize=8)
    else:
        days = pd.Series(revenue, index=periods.dt.normalize()).groupby(level=0).sum()
        days = days.asfreq("D", fill_value=0.0)  # a day without sales is a day of 0, not a gap
        ax.plot(days.index, days.to_numpy(), color=BAR, linewidth=1.1)
        locator = mdates.AutoDateLocator(maxticks=10)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        pad = max(pd.Timedelta(days=1), (pd.Timedelta(days=7) - (periods.max() - periods.min())) / 2)
        ax.set_xlim(periods.min() - pad, periods.max() + pad)  # at least a week wide
        ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.set_xlabel(freq)
    ax.set_ylabel("revenue (GBP)")


def _check_freq(freq: str) -> None:
    if freq not in ("day", "month"):
        raise ValueError(f'freq must be "day" or "month", not {freq!r}')


def plot_revenue_over_time(frame: pd.DataFrame, freq: str = "day") -> Figure:
    """Revenue per ``freq`` from columns period, revenue: "day" draws a line (days missing
    from the frame, without sales, at 0), "month" draws bars."""
    _check_freq(freq)
    fig, ax = _new()
    _draw_revenue_over_time(ax, frame, freq)
    return fig


def _weekday_hour_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Revenue as a table: rows Monday..Sunday, one column per hour of OFFICE_HOURS (more
    if the data has sales outside them), so that charts of different selections line up."""
    hours = frame["hour"].astype(int)
    table = pd.DataFrame({"dow": frame["dow"].astype(int), "hour": hours,
                          "revenue": _floats(frame["revenue"])})
    table = table.pivot_table(index="dow", columns="hour", values="revenue", aggfunc="sum")
    columns = range(min(hours.min(), OFFICE_HOURS.start), max(hours.max() + 1, OFFICE_HOURS.stop))
    return table.reindex(index=REDSHIFT_DOW, columns=columns, fill_value=0.0).fillna(0.0)


def _draw_revenue_heatmap(ax: Axes, frame: pd.DataFrame) -> None:
    """Revenue by weekday (rows) and hour (columns), with a colour bar."""
    title = "Revenue by weekday and hour (sales)"
    if frame.empty:
        _empty(ax, title)
        return
    table = _weekday_hour_table(frame)
    image = ax.imshow(table.to_numpy(), aspect="auto", cmap="Blues")
    ax.set_xticks(range(len(table.columns)), [f"{h:02d}" for h in table.columns], fontsize=8)
    ax.set_yticks(range(7), WEEKDAYS)
    ax.set_title(title)
    ax.set_xlabel("hour of the day")
    ax.figure.colorbar(image, ax=ax, label="revenue (GBP)")


def plot_revenue_heatmap(frame: pd.DataFrame) -> Figure:
    """Heatmap of revenue from columns dow (Redshift: 0 = Sunday), hour, revenue."""
    fig, ax = _new((10, 4))
    _draw_revenue_heatmap(ax, frame)
    return fig


def plot_weekday_revenue(frame: pd.DataFrame) -> Figure:
    """Bars: revenue per weekday, Monday first, from columns dow (0 = Sunday) and revenue."""
    revenue = pd.Series(_floats(frame["revenue"]), index=frame["dow"].astype(int))
    revenue = revenue.groupby(level=0).sum().reindex(REDSHIFT_DOW, fill_value=0.0)
    fig, ax = _new((9, 4))
    ax.bar(WEEKDAYS, revenue.to_numpy(), color=BAR)
    ax.set_title("Revenue per weekday (sales)")
    ax.set_xlabel("weekday")
    ax.set_ylabel("revenue (GBP)")
    return fig


def _draw_ranking(ax: Axes, labels: list[str], values: np.ndarray, title: str,
                  xlabel: str, texts: list[str] | None = None,
                  colours: list[str] | None = None) -> None:
    """Horizontal bars in the given order, the first on top, with a text at each bar's end."""
    if not labels:
        _empty(ax, title)
        return
    positions = np.arange(len(labels))[::-1]
    bars = ax.barh(positions, values, color=colours or BAR)
    ax.set_yticks(positions, labels, fontsize=8)
    ax.bar_label(bars, texts or [f"{v:,.0f}" for v in values], padding=3, fontsize=8)
    ax.set_xlim(0, max(values.max(), 0) * 1.18 or 1)
    ax.set_title(title)
    ax.set_xlabel(xlabel)


def _product_labels(frame: pd.DataFrame) -> list[str]:
    """One label per row of a product frame: the stock code and the (shortened) description."""
    return [f"{code}  {text[:28] if isinstance(text, str) else ''}"
            for code, text in zip(frame["stock_code"], frame["description"])]


def plot_ranking(frame: pd.DataFrame, label: str, value: str, title: str = "",
                 xlabel: str = "") -> Figure:
    """Horizontal bars of ``frame[value]`` named by ``frame[label]``, in the frame's order
    (the first row on top). ``label="product"`` names products by stock_code and description."""
    labels = _product_labels(frame) if label == "product" else frame[label].astype(str).tolist()
    fig, ax = _new((10, 0.42 * max(len(frame), 1) + 1.5))
    _draw_ranking(ax, labels, _floats(frame[value]), title or f"{value} by {label}",
                  xlabel or value)
    return fig


def plot_country_revenue(frame: pd.DataFrame, home: str = "United Kingdom", n: int = 10) -> Figure:
    """Two panels from columns country, revenue: the home country's share of all revenue,
    and the n other countries with the most revenue (each with its share of all revenue)."""
    revenue = pd.Series(_floats(frame["revenue"]), index=frame["country"]).sort_values(
        ascending=False, kind="stable")
    total = revenue.sum() or 1.0
    others = revenue.drop(home, errors="ignore")
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 2])
    split = np.array([revenue.get(home, 0.0), others.sum()])
    _draw_ranking(left, [home, "all other countries"], split, f"{home} vs the rest",
                  "revenue (GBP)", [f"{100 * v / total:.1f} %" for v in split])
    top = others.head(n)
    _draw_ranking(right, top.index.tolist(), top.to_numpy(), f"Top {len(top)} countries besides {home}",
                  "revenue (GBP)", [f"{100 * v / total:.1f} %" for v in top.to_numpy()])
    return fig


def plot_rfm_segments(frame: pd.DataFrame) -> Figure:
    """Two panels from an RFM frame (columns recency, frequency, monetary, segment): customers
    per segment (with the segment's share of revenue), and recency against money spent."""
    order = [s for s in RFM_SEGMENTS if s in set(frame["segment"])]
    order += sorted(set(frame["segment"]) - set(order))
    money = pd.Series(_floats(frame["monetary"]), index=frame.index)
    sizes = frame["segment"].value_counts().reindex(order)
    shares = money.groupby(frame["segment"]).sum().reindex(order) / (money.sum() or 1.0)
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    colours = [RFM_SEGMENTS.get(segment, (GREY, ""))[0] for segment in order]
    _draw_ranking(left, order, sizes.to_numpy(dtype=float), "Customers per RFM segment",
                  "customers", [f"{n}  ({100 * s:.0f} % of revenue)" for n, s in zip(sizes, shares)],
                  colours)
    for segment in order:
        rows = frame["segment"] == segment
        size = 14 + 6 * frame.loc[rows, "frequency"].astype(float).clip(upper=20)
        right.scatter(frame.loc[rows, "recency"].astype(float), money[rows].clip(lower=0.01),
                      s=size, color=RFM_SEGMENTS.get(segment, (GREY, ""))[0], alpha=0.7,
                      label=segment, edgecolor="white", linewidth=0.5)
    right.set_yscale("log")
    right.set_title("Each customer: recency and money spent")
    right.set_xlabel("recency (days since the last purchase)")
    right.set_ylabel("monetary (GBP, log scale)")
    right.legend(title="segment (dot size: frequency)", fontsize=8)
    return fig


def _draw_kpis(ax: Axes, kpis: pd.DataFrame) -> None:
    """KPI tiles: revenue, invoices, customers and the average invoice."""
    row = kpis.iloc[0] if len(kpis) else pd.Series(dtype=object)
    revenue = float(row.get("revenue") or 0)
    invoices, customers = int(row.get("invoices") or 0), int(row.get("customers") or 0)
    tiles = [(f"£{revenue:,.2f}", "revenue"), (f"{invoices:,}", "invoices"),
             (f"{customers:,}", "customers"),
             (f"£{revenue / invoices:,.2f}" if invoices else "–", "average invoice")]
    ax.axis("off")
    for i, (number, name) in enumerate(tiles):
        x, y = 0.25 + 0.5 * (i % 2), 0.72 - 0.5 * (i // 2)
        ax.add_patch(FancyBboxPatch((x - 0.22, y - 0.2), 0.44, 0.36, transform=ax.transAxes,
                                    boxstyle="round,pad=0.01", facecolor="#f4f6f9",
                                    edgecolor="#c9d3e0"))
        ax.text(x, y + 0.03, number, ha="center", va="center", fontsize=16,
                fontweight="bold", color=INK, transform=ax.transAxes)
        ax.text(x, y - 0.11, name, ha="center", va="center", fontsize=10, color="#44546a",
                transform=ax.transAxes)
    ax.set_title("Key figures (sales)")


def dashboard(kpis: pd.DataFrame, over_time: pd.DataFrame, heatmap: pd.DataFrame,
              products: pd.DataFrame, title: str = "Sales dashboard", freq: str = "day") -> Figure:
    """Four panels in a 2x2 grid: KPI tiles (columns revenue, invoices, customers), revenue
    over time (period, revenue), the top products (stock_code, description, revenue) and
    the weekday x hour heatmap (dow, hour, revenue). Empty frames give panels that say so."""
    _check_freq(freq)
    fig = Figure(figsize=(14, 8.5), layout="constrained")
    (top_left, top_right), (bottom_left, bottom_right) = fig.subplots(2, 2)
    _draw_kpis(top_left, kpis)
    _draw_revenue_over_time(top_right, over_time, freq)
    ranking = f"Top {len(products)} products by revenue" if len(products) else "Top products"
    _draw_ranking(bottom_left, _product_labels(products), _floats(products["revenue"]), ranking,
                  "revenue (GBP)")
    _draw_revenue_heatmap(bottom_right, heatmap)
    fig.suptitle(title, fontsize=14, x=0.01, ha="left")
    return fig


def figure_html(fig: Figure, title: str) -> str:
    """A self-contained HTML page showing the figure as a PNG embedded in base64."""
    import base64
    import html
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    image = base64.b64encode(buffer.getvalue()).decode("ascii")
    name = html.escape(title)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{name}</title>'
            f'</head>\n<body>\n<h1>{name}</h1>\n<img alt="{name}" '
            f'src="data:image/png;base64,{image}">\n</body>\n</html>\n')
