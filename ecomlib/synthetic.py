"""The course's synthetic data: seeded, invented, and shaped like the real data.

When the real "Online Retail" file is not there (in CI, in a classroom without it), the
course runs on data made here: invented products ("PINK WICKER PEG BAG"...) and
customers, but with the real data's shape: seasonality by month, hour and weekday,
closed days, invoice sizes, prices and quantities, cancellations and price-0
adjustments, guests without a CustomerID, repeated and duplicated lines. Only
aggregate statistics of the real data are used (the constants below: shares, quantiles,
monthly counts), never its rows. ``tests/unit/test_data.py`` checks the calibration with
stated tolerances at 20,000 and 541,909 rows.

:func:`generate` is the entry point (``ecomlib.data.generate`` calls it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecomlib.schema import COLUMNS, DEFAULT_ROWS, DEFAULT_SEED, REAL_STATS, parse

# ---------------------------------------------------------------------------
# Synthetic data: constants measured on the real data (aggregates only)
# ---------------------------------------------------------------------------


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
