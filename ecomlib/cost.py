"""Cost and capacity planner for the course's stack on a real AWS account.

From a load (orders per second, lines per order, bytes per line, how long data is kept,
how many invoice look-ups) :func:`plan` works out what the stack needs (Kinesis shards,
Lambda invocations and GB-seconds, API requests, DynamoDB request units and storage,
Firehose volume, S3 storage and requests, Redshift nodes) and what that costs per month
at AWS's published on-demand list prices::

    from ecomlib import cost

    p = cost.plan(cost.Load(orders_per_second=10))
    print(p)                     # capacity and the monthly total
    p.table()                    # one row per billed item: quantity, unit, USD per month
    cost.stack_cost_per_hour()   # what the deployed stack costs per hour while idle
    cost.plot_cost_against_load()

Prices: ``PRICES`` holds us-east-1 (N. Virginia) on-demand list prices in USD, as
published by AWS on the pages in ``PRICE_PAGES``; ``PRICES_AS_OF`` says when the figures
were taken.  **Prices change, and differ by region.**  They were not fetched live: check
the pages before relying on a figure, and pass your own ``prices=`` to any function here.
No free tier is subtracted, and taxes, support plans and data transfer out of AWS are
not included.  On the embedded local AWS everything is free.

How the numbers are made (every assumption is a named constant below):

- A month is 730 hours (AWS's own convention); rates are averages over the month.
  Kinesis shards are sized for the *peak* (``Load.peak_to_average``), everything else is
  billed on the average.
- One Kinesis record per invoice (the ingest function packs an invoice's rows as JSON
  Lines), so a record is ``lines_per_order * bytes_per_line`` bytes.  Every order is
  taken to be the average order.
- Storage is the steady state: ``retention_days`` of data kept in S3 (raw zone and the
  Firehose objects), DynamoDB and Redshift.
- Lambda durations are assumptions (``FUNCTIONS``), not measurements on AWS: replace them
  with the "Billed Duration" of your own functions' REPORT log lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ecomlib import registry

# --------------------------------------------------------------------------------------
# Prices
# --------------------------------------------------------------------------------------

REGION = "us-east-1"
# The figures below are the us-east-1 list prices as published in January 2025 (after
# DynamoDB's on-demand price cut of 1 November 2024).  They were written down then, not
# fetched for the course's own date (2026-11): check PRICE_PAGES before relying on them.
PRICES_AS_OF = "2025-01"

PRICE_PAGES: dict[str, str] = {
    "Kinesis Data Streams": "https://aws.amazon.com/kinesis/data-streams/pricing/",
    "Lambda": "https://aws.amazon.com/lambda/pricing/",
    "API Gateway": "https://aws.amazon.com/api-gateway/pricing/",
    "DynamoDB": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "Firehose": "https://aws.amazon.com/firehose/pricing/",
    "S3": "https://aws.amazon.com/s3/pricing/",
    "Redshift": "https://aws.amazon.com/redshift/pricing/",
    "CloudWatch Logs": "https://aws.amazon.com/cloudwatch/pricing/",
}

# USD, us-east-1, on-demand.  The unit of each price is in UNITS.
PRICES: dict[str, float] = {
    "kinesis_shard_hour": 0.015,
    "kinesis_put_units_per_million": 0.014,      # one PUT payload unit = 25 KB of a record
    "lambda_requests_per_million": 0.20,
    "lambda_gb_second": 0.0000166667,            # x86; Arm (Graviton) is 20 % cheaper
    "apigw_rest_requests_per_million": 3.50,     # first 333 million a month
    "dynamodb_write_units_per_million": 0.625,   # on-demand, standard table class
    "dynamodb_read_units_per_million": 0.125,
    "dynamodb_gb_month": 0.25,
    "s3_gb_month": 0.023,                        # S3 Standard, first 50 TB
    "s3_puts_per_thousand": 0.005,               # PUT, COPY, POST, LIST
    "s3_gets_per_thousand": 0.0004,              # GET, SELECT and others
    "firehose_gb": 0.029,                        # first 500 TB, records rounded up to 5 KB
    "redshift_ra3_large_node_hour": 0.543,
    "redshift_dc2_large_node_hour": 0.25,
    "redshift_managed_storage_gb_month": 0.024,  # RA3 only (DC2 storage is in the node)
    "cloudwatch_logs_ingested_gb": 0.50,         # standard log class, first tier
}

UNITS: dict[str, str] = {
    "kinesis_shard_hour": "shard-hour",
    "kinesis_put_units_per_million": "million PUT payload units",
    "lambda_requests_per_million": "million requests",
    "lambda_gb_second": "GB-second",
    "apigw_rest_requests_per_million": "million requests",
    "dynamodb_write_units_per_million": "million write request units",
    "dynamodb_read_units_per_million": "million read request units",
    "dynamodb_gb_month": "GB-month",
    "s3_gb_month": "GB-month",
    "s3_puts_per_thousand": "thousand PUT requests",
    "s3_gets_per_thousand": "thousand GET requests",
    "firehose_gb": "GB ingested (5 KB rounding)",
    "redshift_ra3_large_node_hour": "node-hour",
    "redshift_dc2_large_node_hour": "node-hour",
    "redshift_managed_storage_gb_month": "GB-month",
    "cloudwatch_logs_ingested_gb": "GB ingested",
}


def price_table(prices: Mapping[str, float] = PRICES) -> pd.DataFrame:
    """The price list as a table: price key, USD, unit, and the region and date."""
    return pd.DataFrame(
        [(key, usd, UNITS.get(key, ""), REGION, PRICES_AS_OF) for key, usd in prices.items()],
        columns=["price", "usd", "per", "region", "as_of"],
    )


# --------------------------------------------------------------------------------------
# Limits and assumptions
# --------------------------------------------------------------------------------------

HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
SECONDS_PER_DAY = 24 * 3600
KB = 1024
GB = 1024**3  # AWS bills data volumes in GB of 2**30 bytes

# Kinesis Data Streams, per shard (provisioned mode).  1 MB/s is taken as 10**6 bytes:
# a little below the 1 MiB AWS allows, so the plan errs on the side of one more shard.
SHARD_WRITE_RECORDS_PER_SECOND = 1_000
SHARD_WRITE_BYTES_PER_SECOND = 1_000_000
SHARD_READ_BYTES_PER_SECOND = 2_000_000  # shared by every consumer without enhanced fan-out
PUT_PAYLOAD_UNIT_BYTES = 25 * KB
MAX_RECORD_BYTES = 1_000_000  # the ingest function splits a bigger invoice into parts
STREAM_READERS = registry.stream_readers()  # stream_to_s3, stream_to_dynamodb and Firehose each read every record

# Firehose bills each record rounded up to 5 KB; it buffers 5 MiB or 60 s per object.
FIREHOSE_ROUNDING_BYTES = 5 * KB
FIREHOSE_BUFFER_BYTES = 5 * 1024 * 1024
FIREHOSE_BUFFER_SECONDS = 60
FIREHOSE_S3_OBJECTS_PER_DELIVERY = 2  # the data object and the COPY manifest

# Kinesis event source mappings, as declared in ecomlib.registry (batch size, window s).
STREAM_MAPPINGS: dict[str, tuple[int, float]] = {
    m.function: (m.batch_size, float(m.window_seconds)) for m in registry.mappings()}
LAMBDA_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # a batch never carries more than this

# DynamoDB items (see lambda_src/stream_to_dynamodb): per invoice part an Invoices item
# (the lines as JSON, ~ the record's size, plus its attributes) and a Customers item
# (one line total per line).  Every invoice is counted with a customer: guests have no
# Customers item, so this is a little high for data with guest checkouts.
INVOICE_ITEM_OVERHEAD_BYTES = 200
CUSTOMER_ITEM_OVERHEAD_BYTES = 150
CUSTOMER_ITEM_BYTES_PER_LINE = 40
DYNAMODB_ITEM_STORAGE_OVERHEAD_BYTES = 100  # DynamoDB adds 100 bytes per item for storage
WRITE_UNIT_BYTES = 1 * KB  # one WRU per 1 KB written, per item
READ_UNIT_BYTES = 4 * KB  # one RRU per 4 KB strongly consistent read, half that eventually
EVENTUALLY_CONSISTENT_READ = 0.5  # the invoice API reads with the default (eventual)

# Redshift stores columns compressed; JSON Lines text shrinks about this much.
REDSHIFT_COMPRESSION = 3.0

# Each Lambda invocation writes START, END and REPORT lines plus a line or two of its own.
LOG_BYTES_PER_INVOCATION = 600


@dataclass(frozen=True)
class NodeType:
    """A Redshift node type: its price key, the data one node holds, storage billed apart."""

    price_key: str
    storage_gb_per_node: float
    managed_storage: bool  # RA3: storage is billed per GB-month, apart from the node


NODE_TYPES: dict[str, NodeType] = {
    # RA3 managed storage quota per node (ra3.large: 8 TB when multi-node; check "Node
    # type details" in the Redshift Management Guide for single-node limits).
    "ra3.large": NodeType("redshift_ra3_large_node_hour", 8 * 1024, managed_storage=True),
    "dc2.large": NodeType("redshift_dc2_large_node_hour", 160, managed_storage=False),
}


@dataclass(frozen=True)
class Function:
    """A Lambda function: memory and an assumed duration per invocation.

    Duration in ms = ``ms_per_invocation + ms_per_item * items``, where an item is a row
    (ingest_api), a Kinesis record (stream consumers) or nothing (invoice_api).
    """

    memory_mb: int
    ms_per_invocation: float
    ms_per_item: float


# Memory and assumed durations as declared in ecomlib.registry.
FUNCTIONS: dict[str, Function] = {
    f.folder: Function(f.memory_mb, ms_per_invocation=f.ms_per_invocation, ms_per_item=f.ms_per_item)
    for f in registry.functions()}

SERVICES = ("Kinesis Data Streams", "Lambda", "API Gateway", "DynamoDB", "Firehose", "S3",
            "Redshift", "CloudWatch Logs")


# --------------------------------------------------------------------------------------
# The load
# --------------------------------------------------------------------------------------

def _check(name: str, value: float, minimum: float = 0.0, *, above: bool = False) -> None:
    """Raise ValueError unless ``value`` is a finite number >= minimum (> if ``above``)."""
    number = float(value)
    ok = math.isfinite(number) and (number > minimum if above else number >= minimum)
    if not ok:
        relation = ">" if above else ">="
        raise ValueError(f"{name} must be a finite number {relation} {minimum:g}, got {value!r}")


@dataclass(frozen=True)
class Load:
    """What the stack is asked to carry, on average over a month.

    orders_per_second    invoices sent to POST /invoices (average; 0 = idle)
    lines_per_order      rows per invoice (Online Retail: about 21)
    bytes_per_line       one row as JSON (about 150-250 bytes)
    retention_days       how long S3, DynamoDB and Redshift keep the data
    lookups_per_second   GET /invoices and GET /customers requests
    peak_to_average      busiest second / average: shards are sized for the peak
    rows_per_request     rows the client sends per POST (whole invoices only)
    """

    orders_per_second: float
    lines_per_order: float = 20.0
    bytes_per_line: float = 200.0
    retention_days: float = 30.0
    lookups_per_second: float = 0.0
    peak_to_average: float = 1.0
    rows_per_request: int = 500

    def __post_init__(self) -> None:
        _check("orders_per_second", self.orders_per_second)
        _check("lines_per_order", self.lines_per_order, 0, above=True)
        _check("bytes_per_line", self.bytes_per_line, 0, above=True)
        _check("retention_days", self.retention_days)
        _check("lookups_per_second", self.lookups_per_second)
        _check("peak_to_average", self.peak_to_average, 1)
        _check("rows_per_request", self.rows_per_request, 1)

    @property
    def order_bytes(self) -> float:
        """Bytes of one invoice as JSON Lines."""
        return self.lines_per_order * self.bytes_per_line


# A class replaying the Online Retail data for a few hours: the load the preflight uses.
WORKSHOP_LOAD = Load(orders_per_second=2, retention_days=1, lookups_per_second=1)


# --------------------------------------------------------------------------------------
# Capacity
# --------------------------------------------------------------------------------------

def _ceil(x: float) -> int:
    """math.ceil that ignores floating-point dust (3.0000000000000004 -> 3)."""
    return math.ceil(x - 1e-9)


def shards_needed(records_per_second: float, bytes_per_second: float, *,
                  readers: int = STREAM_READERS, max_utilisation: float = 0.8,
                  min_shards: int = 1) -> int:
    """Provisioned shards for a write rate, keeping each shard at most ``max_utilisation`` full.

    A shard takes 1,000 records/s and 1 MB/s of writes, and serves 2 MB/s of reads shared
    by all ``readers`` (each reads every record).  The busiest of the three limits wins.
    """
    _check("records_per_second", records_per_second)
    _check("bytes_per_second", bytes_per_second)
    _check("max_utilisation", max_utilisation, 0, above=True)
    if max_utilisation > 1:
        raise ValueError(f"max_utilisation must be at most 1, got {max_utilisation!r}")
    _check("readers", readers, 1)
    _check("min_shards", min_shards, 1)
    needed = max(
        records_per_second / (SHARD_WRITE_RECORDS_PER_SECOND * max_utilisation),
        bytes_per_second / (SHARD_WRITE_BYTES_PER_SECOND * max_utilisation),
        readers * bytes_per_second / (SHARD_READ_BYTES_PER_SECOND * max_utilisation),
    )
    return max(int(min_shards), _ceil(needed))


def put_payload_units(record_bytes: float) -> int:
    """Kinesis PUT payload units of one record: its size in 25 KB units, rounded up."""
    _check("record_bytes", record_bytes)
    return max(1, _ceil(record_bytes / PUT_PAYLOAD_UNIT_BYTES))


def firehose_billed_bytes(record_bytes: float) -> int:
    """Bytes Firehose bills for one record: its size rounded up to a multiple of 5 KB."""
    _check("record_bytes", record_bytes)
    return max(1, _ceil(record_bytes / FIREHOSE_ROUNDING_BYTES)) * FIREHOSE_ROUNDING_BYTES


def stream_invocations_per_second(records_per_second: float, shards: int, batch_size: int,
                                  window_seconds: float) -> float:
    """Invocations/s of a function reading the stream through an event source mapping.

    Each shard is polled on its own: a batch goes out when ``batch_size`` records are
    waiting or ``window_seconds`` have passed, and never when no record is waiting.
    """
    if records_per_second <= 0:
        return 0.0
    per_shard = records_per_second / shards
    return shards * min(per_shard, max(1 / window_seconds, per_shard / batch_size))


@dataclass(frozen=True)
class LambdaUse:
    """One function's month: invocations, average billed ms, GB-seconds."""

    invocations: float
    ms_per_invocation: float
    gb_seconds: float


def _lambda_use(function: Function, invocations_per_second: float,
                items_per_second: float) -> LambdaUse:
    invocations = invocations_per_second * SECONDS_PER_MONTH
    if invocations == 0:
        return LambdaUse(0.0, 0.0, 0.0)
    items_per_invocation = items_per_second / invocations_per_second
    ms = function.ms_per_invocation + function.ms_per_item * items_per_invocation
    ms = math.ceil(ms)  # Lambda bills duration in whole milliseconds
    return LambdaUse(invocations, ms, invocations * ms / 1000 * function.memory_mb / 1024)


# --------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CostLine:
    """One billed item: ``quantity`` of ``unit`` at ``usd_per_unit``, per month."""

    service: str
    item: str
    quantity: float
    unit: str
    usd_per_unit: float

    @property
    def monthly_usd(self) -> float:
        return self.quantity * self.usd_per_unit


@dataclass(frozen=True)
class Plan:
    """What a load needs and costs per month.  ``table()`` lists every billed item."""

    load: Load
    node_type: str
    shards: int
    records_per_second: float  # average
    record_bytes: float
    lambdas: dict[str, LambdaUse]
    api_requests: float  # per month, POST and GET
    dynamodb_write_units: float  # per month
    dynamodb_read_units: float  # per month
    dynamodb_gb: float  # stored, steady state
    firehose_gb: float  # billed per month, after 5 KB rounding
    s3_gb: float  # stored, steady state
    s3_puts: float  # per month
    s3_gets: float  # per month
    redshift_nodes: int
    redshift_gb: float  # stored, compressed
    log_gb: float  # per month
    lines: tuple[CostLine, ...] = field(repr=False)

    @property
    def total_usd(self) -> float:
        """Monthly cost of every line, in USD."""
        return sum(line.monthly_usd for line in self.lines)

    @property
    def redshift_node_hours(self) -> float:
        return self.redshift_nodes * HOURS_PER_MONTH

    def table(self) -> pd.DataFrame:
        """One row per billed item: service, item, quantity, unit, usd_per_unit, monthly_usd."""
        return pd.DataFrame(
            [(l.service, l.item, l.quantity, l.unit, l.usd_per_unit, l.monthly_usd)
             for l in self.lines],
            columns=["service", "item", "quantity", "unit", "usd_per_unit", "monthly_usd"],
        )

    def by_service(self) -> pd.Series:
        """Monthly USD per service (every service in SERVICES, zeros included)."""
        costs = self.table().groupby("service")["monthly_usd"].sum()
        return costs.reindex(list(SERVICES), fill_value=0.0).rename("monthly_usd")

    def summary(self) -> str:
        """A few lines: the load, the capacity and the monthly cost."""
        load = self.load
        invocations = sum(use.invocations for use in self.lambdas.values())
        gb_seconds = sum(use.gb_seconds for use in self.lambdas.values())
        services = "\n".join(f"  {name:<22}${usd:>12,.2f}"
                             for name, usd in self.by_service().items() if usd > 0)
        return (
            f"Load: {load.orders_per_second:g} orders/s x {load.lines_per_order:g} lines x "
            f"{load.bytes_per_line:g} B, {load.lookups_per_second:g} look-ups/s, "
            f"data kept {load.retention_days:g} days\n"
            f"Capacity: {self.shards} Kinesis shards, {invocations:,.0f} Lambda invocations "
            f"and {gb_seconds:,.0f} GB-s a month, {self.redshift_nodes} x {self.node_type}\n"
            f"Monthly cost at {REGION} list prices as of {PRICES_AS_OF}: "
            f"${self.total_usd:,.2f}\n{services}"
        )

    def __str__(self) -> str:
        return self.summary()


def plan(load: Load, *, node_type: str = "ra3.large", min_shards: int = 2,
         max_utilisation: float = 0.8, functions: Mapping[str, Function] = FUNCTIONS,
         prices: Mapping[str, float] = PRICES) -> Plan:
    """Capacity and monthly cost of the course stack for ``load``.

    ``min_shards`` is the stream's size when the load needs fewer (the course deploys 2);
    ``max_utilisation`` is how full a shard may get at the peak (0.8 leaves 20 % spare).
    """
    if node_type not in NODE_TYPES:
        raise ValueError(f"node_type must be one of {sorted(NODE_TYPES)}, got {node_type!r}")
    node = NODE_TYPES[node_type]
    seconds = SECONDS_PER_MONTH
    stored_days = load.retention_days * SECONDS_PER_DAY

    # Kinesis: one record per invoice (an invoice over 1 MB becomes several parts).
    parts = max(1, _ceil(load.order_bytes / MAX_RECORD_BYTES))
    record_bytes = load.order_bytes / parts
    lines_per_record = load.lines_per_order / parts
    records = load.orders_per_second * parts
    bytes_in = load.orders_per_second * load.order_bytes
    shards = shards_needed(records * load.peak_to_average, bytes_in * load.peak_to_average,
                           max_utilisation=max_utilisation, min_shards=min_shards)

    # API Gateway: whole invoices per POST, at least one.
    orders_per_request = max(1, math.floor(load.rows_per_request / load.lines_per_order))
    posts = load.orders_per_second / orders_per_request
    rows = load.orders_per_second * load.lines_per_order
    api_requests = (posts + load.lookups_per_second) * seconds

    # Lambda
    lambdas = {"ingest_api": _lambda_use(functions["ingest_api"], posts, rows)}
    for name, (batch, window) in STREAM_MAPPINGS.items():
        batch = max(1, min(batch, math.floor(LAMBDA_MAX_PAYLOAD_BYTES / record_bytes)))
        rate = stream_invocations_per_second(records, shards, batch, window)
        lambdas[name] = _lambda_use(functions[name], rate, records)
    lambdas["invoice_api"] = _lambda_use(functions["invoice_api"], load.lookups_per_second,
                                         load.lookups_per_second)

    # DynamoDB: an Invoices item and a Customers item per record.
    invoice_item = INVOICE_ITEM_OVERHEAD_BYTES + record_bytes
    customer_item = CUSTOMER_ITEM_OVERHEAD_BYTES + CUSTOMER_ITEM_BYTES_PER_LINE * lines_per_record
    wru_per_record = (_ceil(invoice_item / WRITE_UNIT_BYTES)
                      + _ceil(customer_item / WRITE_UNIT_BYTES))
    rru_per_lookup = EVENTUALLY_CONSISTENT_READ * _ceil(parts * invoice_item / READ_UNIT_BYTES)
    dynamodb_gb = (records * stored_days
                   * (invoice_item + customer_item + 2 * DYNAMODB_ITEM_STORAGE_OVERHEAD_BYTES) / GB)

    # Firehose -> S3 -> Redshift COPY
    firehose_gb = records * seconds * firehose_billed_bytes(record_bytes) / GB
    deliveries = (min(records, max(1 / FIREHOSE_BUFFER_SECONDS, bytes_in / FIREHOSE_BUFFER_BYTES))
                  if records > 0 else 0.0)
    s3_objects = FIREHOSE_S3_OBJECTS_PER_DELIVERY * deliveries * seconds

    # S3: the raw zone (one object per stream_to_s3 batch) and Firehose's objects, which
    # Redshift's COPY reads back; both keep the JSON Lines as they are.
    s3_gb = 2 * bytes_in * stored_days / GB
    s3_puts = lambdas["stream_to_s3"].invocations + s3_objects
    s3_gets = s3_objects

    # Redshift: enough nodes to hold the compressed data.
    redshift_gb = bytes_in * stored_days / REDSHIFT_COMPRESSION / GB
    nodes = max(1, _ceil(redshift_gb / node.storage_gb_per_node))

    log_gb = sum(use.invocations for use in lambdas.values()) * LOG_BYTES_PER_INVOCATION / GB

    def line(service: str, item: str, quantity: float, key: str, per: float = 1) -> CostLine:
        return CostLine(service, item, quantity / per, UNITS[key], prices[key])

    lines = [
        line("Kinesis Data Streams", "shard-hours", shards * HOURS_PER_MONTH, "kinesis_shard_hour"),
        line("Kinesis Data Streams", "PUT payload units",
             records * seconds * put_payload_units(record_bytes),
             "kinesis_put_units_per_million", 1e6),
    ]
    for name, use in lambdas.items():
        lines.append(line("Lambda", f"{name} requests", use.invocations,
                          "lambda_requests_per_million", 1e6))
        lines.append(line("Lambda", f"{name} duration", use.gb_seconds, "lambda_gb_second"))
    lines += [
        line("API Gateway", "REST requests", api_requests, "apigw_rest_requests_per_million", 1e6),
        line("DynamoDB", "writes", records * seconds * wru_per_record,
             "dynamodb_write_units_per_million", 1e6),
        line("DynamoDB", "reads", load.lookups_per_second * seconds * rru_per_lookup,
             "dynamodb_read_units_per_million", 1e6),
        line("DynamoDB", "storage", dynamodb_gb, "dynamodb_gb_month"),
        line("Firehose", "ingestion", firehose_gb, "firehose_gb"),
        line("S3", "storage", s3_gb, "s3_gb_month"),
        line("S3", "PUT requests", s3_puts, "s3_puts_per_thousand", 1e3),
        line("S3", "GET requests", s3_gets, "s3_gets_per_thousand", 1e3),
        line("Redshift", f"{node_type} node-hours", nodes * HOURS_PER_MONTH, node.price_key),
    ]
    if node.managed_storage:
        lines.append(line("Redshift", "managed storage", redshift_gb,
                          "redshift_managed_storage_gb_month"))
    lines.append(line("CloudWatch Logs", "Lambda logs", log_gb, "cloudwatch_logs_ingested_gb"))

    return Plan(
        load=load, node_type=node_type, shards=shards, records_per_second=records,
        record_bytes=record_bytes, lambdas=lambdas, api_requests=api_requests,
        dynamodb_write_units=records * seconds * wru_per_record,
        dynamodb_read_units=load.lookups_per_second * seconds * rru_per_lookup,
        dynamodb_gb=dynamodb_gb, firehose_gb=firehose_gb, s3_gb=s3_gb, s3_puts=s3_puts,
        s3_gets=s3_gets, redshift_nodes=nodes, redshift_gb=redshift_gb, log_gb=log_gb,
        lines=tuple(lines),
    )


# --------------------------------------------------------------------------------------
# The preflight: what the stack costs while it exists
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StackCost:
    """Hourly and daily cost of the deployed stack, with a breakdown by service."""

    per_hour: float
    per_day: float
    breakdown: pd.DataFrame  # service, usd_per_hour, usd_per_day
    shards: int
    node_type: str
    redshift_nodes: int

    def __str__(self) -> str:
        return (f"about ${self.per_hour:,.2f} per hour, ${self.per_day:,.2f} per day while it "
                f"exists ({self.shards} shards, {self.redshift_nodes} x {self.node_type}; "
                f"{REGION} list prices as of {PRICES_AS_OF})")


def stack_cost_per_hour(load: Load | None = None, *, shards: int = 2,
                        node_type: str = "ra3.large",
                        prices: Mapping[str, float] = PRICES) -> StackCost:
    """What the course stack costs per hour and per day while it exists.

    With no ``load`` the stack is idle: only the shards and the Redshift node cost money
    (data already stored costs a little more).  Pass a load (e.g. ``WORKSHOP_LOAD``) to add
    its usage: the monthly plan / 730 hours, storage counted as if ``retention_days`` of
    data were already kept (a little high for a stack created today).

        print("Estimated:", cost.stack_cost_per_hour())
        # Estimated: about $0.57 per hour, $13.75 per day while it exists (...)
    """
    p = plan(load if load is not None else Load(orders_per_second=0), node_type=node_type,
             min_shards=shards, prices=prices)
    hourly = p.by_service() / HOURS_PER_MONTH
    breakdown = pd.DataFrame({"service": hourly.index, "usd_per_hour": hourly.values,
                              "usd_per_day": hourly.values * 24})
    per_hour = float(hourly.sum())
    return StackCost(per_hour, per_hour * 24, breakdown, p.shards, node_type, p.redshift_nodes)


# --------------------------------------------------------------------------------------
# Cost against load
# --------------------------------------------------------------------------------------

DEFAULT_ORDERS_PER_SECOND = tuple(np.logspace(-2, 3, 51))  # 0.01 to 1,000 orders/s


def cost_against_load(orders_per_second: Sequence[float] = DEFAULT_ORDERS_PER_SECOND, *,
                      base: Load | None = None, **plan_options) -> pd.DataFrame:
    """Monthly USD per service (columns) for each orders/s (index); other settings from ``base``."""
    base = base if base is not None else Load(orders_per_second=0)
    rows = {float(x): plan(replace(base, orders_per_second=x), **plan_options).by_service()
            for x in orders_per_second}
    frame = pd.DataFrame(rows).T
    frame.index.name = "orders_per_second"
    return frame


SERVICE_COLOURS = dict(zip(SERVICES, ("#9467bd", "#ff7f0e", "#e377c2", "#1f77b4",
                                      "#8c564b", "#2ca02c", "#d62728", "#7f7f7f")))


def plot_cost_against_load(orders_per_second: Sequence[float] = DEFAULT_ORDERS_PER_SECOND, *,
                           base: Load | None = None, stacked: bool = True,
                           **plan_options) -> Figure:
    """Monthly cost against orders per second (log x-axis), by service.

    ``stacked=True`` stacks the services up to the total; ``stacked=False`` draws one line
    per service on log-log axes, where fixed costs are flat and usage costs rise.
    """
    xs = [float(x) for x in orders_per_second]
    if not xs or min(xs) <= 0:
        raise ValueError("orders_per_second must be a non-empty list of values > 0 "
                         "(the x-axis is logarithmic)")
    costs = cost_against_load(sorted(xs), base=base, **plan_options)
    shown = [s for s in SERVICES if costs[s].max() > 0]
    total = costs.sum(axis=1)

    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.add_subplot()
    if stacked:
        ax.stackplot(costs.index, [costs[s] for s in shown], labels=shown,
                     colors=[SERVICE_COLOURS[s] for s in shown], alpha=0.85)
    else:
        for s in shown:
            ax.plot(costs.index, costs[s], label=s, color=SERVICE_COLOURS[s])
        ax.set_yscale("log", nonpositive="mask")
    ax.plot(costs.index, total, color="#222222", linewidth=2, label="total")
    ax.set_xscale("log")
    ax.set_xlabel("orders per second (monthly average)")
    ax.set_ylabel("USD per month")
    ax.set_title(f"Monthly cost against load ({REGION} on-demand list prices as of {PRICES_AS_OF})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return fig
