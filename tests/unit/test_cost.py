"""Tests for ecomlib.cost: capacity follows the AWS limits, costs add up, plots draw."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from ecomlib import cost
from ecomlib.cost import Load

MONTH_HOURS = 730
MONTH_SECONDS = 730 * 3600


@pytest.fixture
def close():
    """Collect figures made by a test and free them afterwards."""
    figures: list[Figure] = []
    yield figures.append
    for fig in figures:
        fig.clear()


# ---- prices -------------------------------------------------------------------------

def test_prices_state_region_date_units_and_sources():
    assert cost.REGION == "us-east-1"
    assert len(cost.PRICES_AS_OF) == 7 and cost.PRICES_AS_OF[4] == "-"  # "YYYY-MM"
    assert set(cost.PRICES) == set(cost.UNITS)
    assert all(price > 0 for price in cost.PRICES.values())
    assert set(cost.PRICE_PAGES) == set(cost.SERVICES)
    assert all(url.startswith("https://aws.amazon.com/") for url in cost.PRICE_PAGES.values())
    table = cost.price_table()
    assert list(table.columns) == ["price", "usd", "per", "region", "as_of"]
    assert len(table) == len(cost.PRICES) and set(table["region"]) == {"us-east-1"}
    for node in cost.NODE_TYPES.values():
        assert node.price_key in cost.PRICES


# ---- Kinesis capacity ---------------------------------------------------------------

def test_a_shard_takes_1000_records_per_second_and_one_more_needs_a_second_shard():
    exact = dict(readers=1, max_utilisation=1.0)
    assert cost.shards_needed(1000, 0, **exact) == 1
    assert cost.shards_needed(1001, 0, **exact) == 2
    assert cost.shards_needed(2000, 0, **exact) == 2
    assert cost.shards_needed(2001, 0, **exact) == 3


def test_a_shard_takes_1_mb_per_second_of_writes():
    exact = dict(readers=1, max_utilisation=1.0)
    assert cost.shards_needed(1, 1_000_000, **exact) == 1
    assert cost.shards_needed(1, 1_000_001, **exact) == 2


def test_readers_share_2_mb_per_second_of_reads_per_shard():
    # 0.7 MB/s fits one shard's writes, but three readers pull 2.1 MB/s out of it.
    assert cost.shards_needed(10, 700_000, readers=1, max_utilisation=1.0) == 1
    assert cost.shards_needed(10, 700_000, readers=3, max_utilisation=1.0) == 2


def test_headroom_and_min_shards():
    assert cost.shards_needed(800, 0, readers=1, max_utilisation=0.8) == 1
    assert cost.shards_needed(801, 0, readers=1, max_utilisation=0.8) == 2
    assert cost.shards_needed(0, 0, min_shards=2) == 2


def test_planned_shards_grow_with_load_and_are_the_fewest_that_keep_every_limit():
    utilisation = 0.8
    previous = 0
    for orders in np.logspace(-1, 3.5, 40):
        load = Load(orders_per_second=float(orders), lines_per_order=20, bytes_per_line=200)
        p = cost.plan(load, max_utilisation=utilisation)
        assert p.shards >= previous
        previous = p.shards
        records, bytes_in = p.records_per_second, load.orders_per_second * load.order_bytes

        def fits(shards: int) -> bool:
            return (records / shards <= 1000 * utilisation + 1e-6
                    and bytes_in / shards <= 1_000_000 * utilisation + 1e-6
                    and 3 * bytes_in / shards <= 2_000_000 * utilisation + 1e-6)

        assert fits(p.shards)
        assert p.shards == 2 or not fits(p.shards - 1)  # 2 = the course's minimum
    assert previous > 10


def test_shards_are_sized_for_the_peak():
    average = cost.plan(Load(orders_per_second=300))
    peaky = cost.plan(Load(orders_per_second=300, peak_to_average=3))
    assert peaky.shards > average.shards
    # data volumes are billed on the average, whatever the number of shards
    for service in ("API Gateway", "DynamoDB", "Firehose"):
        assert peaky.by_service()[service] == pytest.approx(average.by_service()[service])
    puts = [p.table().set_index("item").loc["PUT payload units", "monthly_usd"]
            for p in (average, peaky)]
    assert puts[0] == pytest.approx(puts[1])


def test_put_payload_units_are_25_kb():
    assert cost.put_payload_units(1) == 1
    assert cost.put_payload_units(25 * 1024) == 1
    assert cost.put_payload_units(25 * 1024 + 1) == 2


def test_an_invoice_over_1_mb_becomes_several_records():
    p = cost.plan(Load(orders_per_second=1, lines_per_order=10_000, bytes_per_line=200))
    assert p.records_per_second == 2 and p.record_bytes == 1_000_000


# ---- Firehose -----------------------------------------------------------------------

def test_firehose_bills_each_record_rounded_up_to_5_kb():
    assert cost.firehose_billed_bytes(1) == 5 * 1024
    assert cost.firehose_billed_bytes(5 * 1024) == 5 * 1024
    assert cost.firehose_billed_bytes(5 * 1024 + 1) == 10 * 1024


def test_firehose_volume_depends_on_records_more_than_bytes():
    def firehose_gb(bytes_per_line: float) -> float:
        return cost.plan(Load(orders_per_second=10, lines_per_order=10,
                              bytes_per_line=bytes_per_line)).firehose_gb

    one_kb, four_kb, six_kb = firehose_gb(100), firehose_gb(400), firehose_gb(600)
    assert one_kb == four_kb  # both round up to 5 KB a record
    assert six_kb == pytest.approx(2 * four_kb)  # 6 KB rounds up to 10 KB
    # 10 records/s of 5 KB for a month, in GB of 2**30 bytes
    assert four_kb == pytest.approx(10 * MONTH_SECONDS * 5 * 1024 / 2**30)


# ---- Lambda and the stream mappings --------------------------------------------------

def test_stream_invocations_batch_records_and_never_exceed_them():
    # busy: full batches of 500
    assert cost.stream_invocations_per_second(2000, 2, 500, 5) == pytest.approx(4)
    # quiet: one batch per shard per 5 s window
    assert cost.stream_invocations_per_second(20, 2, 500, 5) == pytest.approx(2 / 5)
    # very quiet: never more invocations than records, none without records
    assert cost.stream_invocations_per_second(0.01, 2, 500, 5) == pytest.approx(0.01)
    assert cost.stream_invocations_per_second(0, 2, 500, 5) == 0


def test_lambda_gb_seconds_follow_memory_and_duration():
    p = cost.plan(Load(orders_per_second=1, lookups_per_second=2))
    api = p.lambdas["invoice_api"]
    function = cost.FUNCTIONS["invoice_api"]
    assert api.invocations == pytest.approx(2 * MONTH_SECONDS)
    assert api.gb_seconds == pytest.approx(
        api.invocations * math.ceil(function.ms_per_invocation) / 1000 * function.memory_mb / 1024)
    ingest = p.lambdas["ingest_api"]
    assert ingest.invocations == pytest.approx(MONTH_SECONDS / 25)  # 25 invoices of 20 rows a POST


# ---- costs --------------------------------------------------------------------------

def test_worked_example_two_shards_for_a_month():
    # 2 shards x 730 hours x $0.01 = $14.60, with a price of our own
    prices = {**cost.PRICES, "kinesis_shard_hour": 0.01}
    table = cost.plan(Load(orders_per_second=0), prices=prices).table()
    shard_hours = table[table["item"] == "shard-hours"].iloc[0]
    assert shard_hours["quantity"] == 2 * 730
    assert shard_hours["monthly_usd"] == pytest.approx(14.60)


def test_worked_example_dynamodb_writes():
    # 1 invoice/s of 2 lines x 100 B: Invoices item 200 + 200 B -> 1 WRU, Customers item
    # 150 + 2 x 40 B -> 1 WRU; 2 WRU/s for 2,628,000 s = 5.256 million WRU.
    prices = {**cost.PRICES, "dynamodb_write_units_per_million": 1.0}
    table = cost.plan(Load(orders_per_second=1, lines_per_order=2, bytes_per_line=100),
                      prices=prices).table()
    writes = table[(table["service"] == "DynamoDB") & (table["item"] == "writes")].iloc[0]
    assert writes["quantity"] == pytest.approx(5.256)
    assert writes["monthly_usd"] == pytest.approx(5.256)


def test_zero_load_leaves_only_the_fixed_costs():
    p = cost.plan(Load(orders_per_second=0))
    table = p.table()
    paid = table[table["monthly_usd"] > 0]
    assert set(paid["item"]) == {"shard-hours", "ra3.large node-hours"}
    expected = (2 * MONTH_HOURS * cost.PRICES["kinesis_shard_hour"]
                + MONTH_HOURS * cost.PRICES["redshift_ra3_large_node_hour"])
    assert p.total_usd == pytest.approx(expected)


def test_breakdown_sums_to_the_total():
    p = cost.plan(Load(orders_per_second=25, lookups_per_second=3))
    table = p.table()
    assert list(table.columns[:4]) == ["service", "item", "quantity", "unit"]
    assert table["monthly_usd"].sum() == pytest.approx(p.total_usd)
    assert p.by_service().sum() == pytest.approx(p.total_usd)
    assert (table["monthly_usd"] == table["quantity"] * table["usd_per_unit"]).all()
    assert list(p.by_service().index) == list(cost.SERVICES)


def test_cost_is_monotonic_in_load_for_every_service():
    costs = cost.cost_against_load(np.logspace(-3, 3.5, 60),
                                   base=Load(orders_per_second=0, lookups_per_second=1))
    assert (costs.diff().dropna() >= -1e-9).all().all()
    total = costs.sum(axis=1)
    assert total.iloc[-1] > 10 * total.iloc[0]


def test_more_lookups_cost_more():
    quiet = cost.plan(Load(orders_per_second=5, lookups_per_second=0))
    busy = cost.plan(Load(orders_per_second=5, lookups_per_second=50))
    assert busy.total_usd > quiet.total_usd
    assert busy.dynamodb_read_units > quiet.dynamodb_read_units == 0


def test_retention_drives_storage():
    short = cost.plan(Load(orders_per_second=5, retention_days=7))
    long = cost.plan(Load(orders_per_second=5, retention_days=70))
    assert long.s3_gb == pytest.approx(10 * short.s3_gb)
    assert long.dynamodb_gb == pytest.approx(10 * short.dynamodb_gb)
    assert long.redshift_gb == pytest.approx(10 * short.redshift_gb)
    assert long.firehose_gb == short.firehose_gb  # ingestion does not depend on retention


def test_redshift_nodes_hold_the_data():
    p = cost.plan(Load(orders_per_second=10, retention_days=365), node_type="dc2.large")
    per_node = cost.NODE_TYPES["dc2.large"].storage_gb_per_node
    assert p.redshift_nodes > 1
    assert (p.redshift_nodes - 1) * per_node < p.redshift_gb <= p.redshift_nodes * per_node
    assert "managed storage" not in set(p.table()["item"])  # DC2 storage is in the node
    ra3 = cost.plan(Load(orders_per_second=10, retention_days=365), node_type="ra3.large")
    assert "managed storage" in set(ra3.table()["item"])


def test_summary_names_capacity_total_region_and_date():
    p = cost.plan(Load(orders_per_second=10))
    text = str(p)
    assert f"{p.shards} Kinesis shards" in text
    assert f"${p.total_usd:,.2f}" in text
    assert cost.REGION in text and cost.PRICES_AS_OF in text


# ---- the preflight ------------------------------------------------------------------

def test_idle_stack_costs_its_shards_and_node_by_the_hour():
    idle = cost.stack_cost_per_hour(shards=2, node_type="dc2.large")
    assert idle.per_hour == pytest.approx(
        2 * cost.PRICES["kinesis_shard_hour"] + cost.PRICES["redshift_dc2_large_node_hour"])
    assert idle.per_day == pytest.approx(24 * idle.per_hour)
    assert idle.breakdown["usd_per_hour"].sum() == pytest.approx(idle.per_hour)
    assert idle.breakdown["usd_per_day"].sum() == pytest.approx(idle.per_day)
    text = str(idle)
    assert f"${idle.per_hour:,.2f} per hour" in text and f"${idle.per_day:,.2f} per day" in text


def test_a_workshop_costs_more_than_idle_and_more_shards_cost_more():
    idle = cost.stack_cost_per_hour()
    workshop = cost.stack_cost_per_hour(cost.WORKSHOP_LOAD)
    assert workshop.per_hour > idle.per_hour
    assert workshop.per_day == pytest.approx(24 * workshop.per_hour)
    four = cost.stack_cost_per_hour(shards=4)
    assert four.per_hour - idle.per_hour == pytest.approx(2 * cost.PRICES["kinesis_shard_hour"])


# ---- the plot -----------------------------------------------------------------------

def test_plot_stacks_services_on_a_log_x_axis(close):
    xs = [0.1, 1, 10, 100]
    fig = cost.plot_cost_against_load(xs)
    close(fig)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert "orders per second" in ax.get_xlabel() and "USD" in ax.get_ylabel()
    assert cost.REGION in ax.get_title() and cost.PRICES_AS_OF in ax.get_title()
    costs = cost.cost_against_load(xs)
    shown = [s for s in cost.SERVICES if costs[s].max() > 0]
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == len(shown)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == shown + ["total"]
    (total,) = [line for line in ax.get_lines() if line.get_label() == "total"]
    assert list(total.get_xdata()) == xs
    assert np.allclose(total.get_ydata(), costs.sum(axis=1))


def test_plot_can_draw_one_line_per_service_on_log_log_axes(close):
    fig = cost.plot_cost_against_load([0.5, 5, 50], stacked=False, node_type="dc2.large")
    close(fig)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[-1] == "total" and "Redshift" in labels and "DynamoDB" in labels


# ---- bad input ----------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("orders_per_second", -1),
    ("orders_per_second", float("nan")),
    ("lookups_per_second", -0.5),
    ("lines_per_order", 0),
    ("bytes_per_line", -200),
    ("retention_days", float("inf")),
    ("peak_to_average", 0.5),
    ("rows_per_request", 0),
])
def test_bad_load_raises_a_clear_value_error(field, value):
    kwargs = {"orders_per_second": 1, field: value}
    with pytest.raises(ValueError, match=rf"^{field} must be a finite number"):
        Load(**kwargs)


def test_bad_settings_raise_value_error():
    with pytest.raises(ValueError, match="node_type must be one of"):
        cost.plan(Load(orders_per_second=1), node_type="ra3.huge")
    with pytest.raises(ValueError, match="max_utilisation"):
        cost.plan(Load(orders_per_second=1), max_utilisation=1.5)
    with pytest.raises(ValueError, match="min_shards"):
        cost.plan(Load(orders_per_second=1), min_shards=0)
    with pytest.raises(ValueError, match="records_per_second"):
        cost.shards_needed(-1, 0)
    with pytest.raises(ValueError, match="logarithmic"):
        cost.plot_cost_against_load([0, 1, 10])
