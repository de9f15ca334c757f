"""Every change to moto, made inside the embedded AWS process only, and nowhere else.

Each patch says what AWS really does and what moto does instead. Some only fix moto
(Kinesis at scale, DynamoDB Scan and Query pages, S3 listings, CloudFormation); others
hand a call to a component (``LambdaFunction.invoke`` -> :class:`~ecomlib.local.lambda_runtime.LambdaRuntime`): the
component holds the behaviour and its state, this module plugs it into moto. No other
module assigns to moto's classes.

:func:`apply` installs them all for one set of components; it may be called again (a new
set of components replaces the old one): a patched attribute always wraps moto's own,
kept on the class under ``_ecomlib_moto_<name>``.
"""

from __future__ import annotations

import bisect
import contextlib
import inspect
import json
import threading
from decimal import Decimal
from itertools import count, islice
from typing import Any, Callable


def apply(aws: Any) -> None:
    """Install every patch, the component-backed ones pointing at the components of ``aws``
    (the server's ``EmbeddedAWS``; not imported here, so that this module stays below it)."""
    _patch_kinesis_shard()
    _patch_kinesis_lambda_mapping()
    _patch_dynamodb_query()
    _patch_dynamodb_scan()
    _patch_dynamodb_scan_count()
    _patch_dynamodb_read_answers()
    _patch_dynamodb_item_size()
    _patch_dynamodb_batch_write_keys()
    _patch_dynamodb_request_values()
    _patch_request_overheads()
    _patch_s3_listing()
    _patch_redshift_iam_roles()
    _patch_cloudformation(aws.lambda_runtime)
    _patch_lambda_invoke(aws.lambda_runtime)
    _patch_lambda_strictness(aws.lambda_runtime)
    _patch_kinesis_strictness()
    _patch_iam_authorization(aws.iam)
    _patch_events(aws.scheduler)
    _patch_redshift_data(aws.redshift_data)
    _patch_create_time_tags()
    _patch_mapping_states(aws.stream_pollers)
    _patch_mapping_starting_timestamp()
    _patch_sqs_deleted_recently()
    _patch_ec2_security_group_in_use()
    _patch_redshift_cluster_states()
    _patch_firehose_states(aws.firehose)
    _patch_duplicate_names()
    _patch_iam_propagation(aws.iam)
    _patch_statement_owners(aws.iam)


def _replace(owner: type, name: str, build: Callable[[Any], Any]) -> None:
    """Set ``owner.name`` to ``build(original)``, ``original`` being moto's own attribute (as
    found on the class: a function, classmethod or property; None if moto has none).

    Two patches of one attribute (say, the tags and the states of CreateStream) wrap each
    other in the order they are applied; applying the same patch again replaces it, never
    wraps it twice (each patch is known by its builder's qualified name)."""
    key, chain_key = f"_ecomlib_moto_{name}", f"_ecomlib_chain_{name}"
    if key not in owner.__dict__:
        try:
            original = inspect.getattr_static(owner, name)
        except AttributeError:
            original = None
        setattr(owner, key, original)
    chain = {**owner.__dict__.get(chain_key, {}), build.__qualname__: build}
    setattr(owner, chain_key, chain)
    current = owner.__dict__[key]
    for wrap in chain.values():
        current = wrap(current)
    setattr(owner, name, current)


def _patch_kinesis_shard() -> None:
    """Make Kinesis puts and reads cost the same whatever the shard already holds.

    AWS: a PutRecords call costs the same for the first record and the millionth.
    moto 5.2: every put copies the shard's whole key list to find the last sequence
    number (``list(self.records.keys())[-1]``), and every GetRecords walks the shard from
    its first record, so 150,000 records in a shard slow puts ~20x. Sequence numbers in a
    moto shard are consecutive integers, so both can be answered in constant time.

    AWS's sequence numbers are decimal strings of about 56 digits, increasing within a
    shard (``49590338271490256608559692538361571095921575989136588898``); moto's are
    ``"1"``, ``"2"``, ... Here a shard's first number is 56 digits (``49``, the shard's
    first use in ms, its index, zeros) and the next ones follow it: code that reads them
    as small numbers, or compares them as text of different lengths, fails here as on AWS.
    """
    import time as _time

    def first_sequence_number(shard: Shard) -> int:
        first = shard.__dict__.get("_ecomlib_first_sequence")
        if first is None:
            first = int(f"49{int(_time.time() * 1000):015d}{shard._shard_id % 10**6:06d}") * 10**33
            shard._ecomlib_first_sequence = first
        return first

    from moto.kinesis.models import Record, Shard

    def get_max_sequence_number(self: Shard) -> int:
        return next(reversed(self.records)) if self.records else first_sequence_number(self) - 1

    def get_min_sequence_number(self: Shard) -> int:
        return next(iter(self.records)) if self.records else first_sequence_number(self)

    def put_record(self: Shard, partition_key: str, data: str, explicit_hash_key: str) -> str:
        sequence_number = get_max_sequence_number(self) + 1
        self.records[sequence_number] = Record(partition_key, data, sequence_number, explicit_hash_key)
        return str(sequence_number)

    def build_get_records(original_get_records):
        return lambda self, last_sequence_id, limit: get_records(self, last_sequence_id, limit, original_get_records)

    def get_records(self: Shard, last_sequence_id: str, limit: int | None, original_get_records):
        last = int(last_sequence_id)
        records = self.records
        if last < first_sequence_number(self):  # TRIM_HORIZON (moto says 0) or a checkpoint of 0
            last = first_sequence_number(self) - 1
        if records and (last + 1) not in records and last < get_max_sequence_number(self):
            # Not the consecutive case (e.g. an iterator from before a reshard).
            return original_get_records(self, last_sequence_id, limit)
        results = []
        for seq in count(last + 1):
            record = records.get(seq)
            if record is None or (limit is not None and len(results) >= limit):
                break
            results.append(record)
            last = seq
        behind = 0.0
        if results:
            behind = records[get_max_sequence_number(self)].created_at - results[-1].created_at
        return results, last, int(behind * 1000)

    _replace(Shard, "put_record", lambda original: put_record)
    _replace(Shard, "get_max_sequence_number", lambda original: get_max_sequence_number)
    _replace(Shard, "get_min_sequence_number", lambda original: get_min_sequence_number)
    _replace(Shard, "get_records", build_get_records)


def _patch_kinesis_strictness() -> None:
    """A new stream is CREATING before it is ACTIVE.

    AWS (Kinesis API reference, CreateStream): "CreateStream is an asynchronous operation
    ... Kinesis Data Streams immediately returns and sets StreamStatus to CREATING"; read
    and write only an ACTIVE stream (the ``stream_exists`` waiter waits for it); a put or
    an iterator before that is refused (``ResourceNotFoundException``). moto 5.2: ACTIVE at
    once. Here a stream made by CreateStream is CREATING for ``kinesis_creating``
    (``aws_time``); one made by a CloudFormation stack is ACTIVE when the stack is complete,
    as CloudFormation waits for it.
    """
    from moto.kinesis.exceptions import StreamNotFoundError
    from moto.kinesis.models import Stream
    from moto.kinesis.responses import KinesisResponse

    from ecomlib.local import aws_time

    def get_status(self: Stream) -> str:
        creating = self.__dict__.get("_ecomlib_creating")
        if creating is not None and not creating.ready:
            return "CREATING"
        return self.__dict__.get("_ecomlib_status", "ACTIVE")

    def set_status(self: Stream, value: str) -> None:
        self.__dict__["_ecomlib_status"] = value

    def refuse_while_creating(self: Stream) -> None:
        if get_status(self) == "CREATING":
            raise StreamNotFoundError(self.stream_name, self.account_id)

    def build_create_stream(original):
        def create_stream(self):
            answer = original(self)
            stream = self.kinesis_backend.streams.get(self._get_param("StreamName"))
            if stream is not None:
                stream._ecomlib_creating = aws_time.Pending("kinesis_creating")
            return answer
        return create_stream

    def build_refusing(original):
        def method(self, *args, **kwargs):
            refuse_while_creating(self)
            return original(self, *args, **kwargs)
        return method

    _replace(Stream, "status", lambda original: property(get_status, set_status))
    _replace(Stream, "put_record", build_refusing)
    _replace(Stream, "get_shard", build_refusing)
    _replace(KinesisResponse, "create_stream", build_create_stream)


def _patch_kinesis_lambda_mapping() -> None:
    """Stop moto from invoking mapped functions inside PutRecord(s).

    AWS: an event source mapping polls each shard in the background and invokes the
    function with batches of records; a put never waits for a function. moto 5.2
    invokes the function synchronously inside every put, one record at a time, through
    Docker (which is not available), and makes puts ~4x slower. ecomlib's own pollers
    deliver batches instead (see ``ecomlib.local``).
    """
    from moto.awslambda.models import LambdaBackend

    def send_kinesis_message(self, *args, **kwargs) -> None:  # noqa: ARG001
        return None

    _replace(LambdaBackend, "send_kinesis_message", lambda original: send_kinesis_message)


def _patch_dynamodb_query() -> None:
    """Make a table Query read one partition, from where the last page stopped.

    AWS: a Query on the partition key reads that partition only, in sort key order, and a
    page resumes right after ``ExclusiveStartKey``: its cost depends on what it returns,
    not on the table's size nor on how many pages came before. moto 5.2: every Query first
    sorts all the table's items (``Table.all_items``), so a GET on a 27,000-item table
    takes ~100 ms and grows with the table; then it sorts the partition and walks it from
    its first item to ``ExclusiveStartKey``. Here a Query on the table itself (not on an
    index) is given only the items moto's own loop will look at: the partition's items
    after ``ExclusiveStartKey`` (before it, for ``ScanIndexForward=false``), in the order
    kept by :func:`_dynamodb_order`, cut after the item that ends the page (``Limit`` or
    1 MB, counting only items that match the sort key condition, as moto's loop does).
    moto's loop then does the rest: the condition, the filter, the projection,
    ``ScannedCount`` and ``LastEvaluatedKey``. Queries on indexes are left as they are.
    """
    from moto.dynamodb.models.table import Table

    def build(original):
        signature = inspect.signature(original)
        return lambda self, *args, **kwargs: query(self, original, signature, *args, **kwargs)

    def query(self: Table, original, signature, *args, **kwargs):
        call = signature.bind(self, *args, **kwargs)
        arguments = call.arguments
        hash_key = arguments.get("hash_key")
        if arguments.get("index_name") or hash_key is None or not self.range_key_attr:
            return original(self, *args, **kwargs)
        items, keys = _dynamodb_order(self).partition(self, hash_key)
        forward = arguments.get("scan_index_forward") is not False
        begin, end = 0, len(items)
        start = arguments.get("exclusive_start_key")
        if start is not None:
            key = _dynamodb_start_key(self, start)
            if key is None or key[0] != hash_key.cast_value:
                return original(self, *args, **kwargs)  # moto answers a key of another partition
            if forward:
                begin = bisect.bisect_right(keys, key)
            else:
                end = bisect.bisect_left(keys, key)
            arguments["exclusive_start_key"] = None
        condition = arguments.get("range_comparison")
        names = [name for name, *_ in arguments.get("range_key_conditions") or []]
        if not arguments.get("filter_kwargs") and (not names or names[-1] == self.range_key_attr):
            begin, end = _dynamodb_page_window(items, begin, end, forward, arguments.get("limit"),
                                               condition, arguments.get("range_objs") or [])
        return _with_items(self, items[begin:end], original, call)

    _replace(Table, "query", build)


def _patch_dynamodb_scan() -> None:
    """Make a Scan page cost the same whether it is the first or the hundredth.

    AWS: a Scan reads the table in its stored order, one page of at most 1 MB (or
    ``Limit`` items) at a time, each page resuming right after ``ExclusiveStartKey``
    (also when that item has since been deleted): a page costs what it reads, however
    large the table and however far the scan has come. moto 5.2: every page sorts the
    whole table (``Table.all_items``) and walks it from its first item to
    ``ExclusiveStartKey``, so a full paged Scan of N items costs ~N²/page: 2,000 items of
    3 KB cost 465 µs an item, 8,000 items 787 µs. Here a Scan of the table itself is given
    the items from just after ``ExclusiveStartKey`` on (by bisection in the order kept by
    :func:`_dynamodb_order`, moto's own order: partition key, then sort key), lazily, and
    moto's own loop does the rest: ``Limit``, the 1 MB page, segments, filters (``Count``
    against ``ScannedCount``), projection and ``LastEvaluatedKey``. Scans of indexes are
    left as they are.
    """
    from moto.dynamodb.models.table import Table

    def build(original):
        signature = inspect.signature(original)
        return lambda self, *args, **kwargs: scan(self, original, signature, *args, **kwargs)

    def scan(self: Table, original, signature, *args, **kwargs):
        call = signature.bind(self, *args, **kwargs)
        if call.arguments.get("index_name"):
            return original(self, *args, **kwargs)
        items, keys = _dynamodb_order(self).table(self)
        begin = 0
        start = call.arguments.get("exclusive_start_key")
        if start is not None:
            key = _dynamodb_start_key(self, start)
            if key is None:
                return original(self, *args, **kwargs)  # moto answers a malformed key
            begin = bisect.bisect_right(keys, key)
            call.arguments["exclusive_start_key"] = None
        plain = _plain_scan(self, islice(items, begin, None), call.arguments)
        if plain is not None:
            return plain
        return _with_items(self, islice(items, begin, None), original, call)

    _replace(Table, "scan", build)

    # The order is kept until a write changes the table.
    def build_write(original_write):
        def write(self: Table, *args, **kwargs):
            try:
                return original_write(self, *args, **kwargs)
            finally:
                _dynamodb_order(self).writes += 1
        return write

    _replace(Table, "put_item", build_write)
    _replace(Table, "delete_item", build_write)


def _patch_dynamodb_read_answers() -> None:
    """Write a Scan or Query answer as the JSON it is, at the speed of ``json.dumps``.

    AWS: a 1 MB page of items comes back in milliseconds. DynamoDB's wire format is the
    answer's own JSON (typed values like ``{"S": "..."}``). moto 5.2 walks every value of
    every item through the operation's output shape in Python (each ``AttributeValue``
    against its ten possible members), ~1 ms per attribute: a 1 MB page of invoice items
    takes a second, a table of 100 MB minutes. Here the answer is dumped as it is; an answer
    with binary values (``B``, ``BS``: raw bytes, to be base64-encoded) still goes through
    moto's serializer.
    """
    from moto.dynamodb.responses import DynamoHandler

    def build(original):
        def read(self: DynamoHandler):
            result = original(self)
            try:
                return json.dumps(result.result)
            except (TypeError, ValueError):
                return result
        return read

    _replace(DynamoHandler, "scan", build)
    _replace(DynamoHandler, "query", build)


class _TableOrder:
    """One table's items in moto's order (partition key, then sort key), with their keys as
    plain values for bisection; rebuilt on the first read after a write (PutItem and
    DeleteItem; an update changes no key). Kept outside the table, so that moto's deep
    copies of a table (transactions, backups) do not copy it."""

    def __init__(self) -> None:
        self.writes = 0
        self.stamp: tuple | None = None
        self.whole: tuple[list, list[tuple]] | None = None
        self.partitions: dict = {}

    def _check(self, table) -> None:
        stamp = (id(table.items), self.writes)
        if stamp != self.stamp:
            self.stamp, self.whole, self.partitions = stamp, None, {}

    def table(self, table) -> tuple[list, list[tuple]]:
        """Every item of ``table`` and its key, in order."""
        self._check(table)
        if self.whole is None:
            from moto.dynamodb.models.table import Table

            items = Table.all_items(table)  # moto's own order
            self.whole = (items, [_dynamodb_item_key(item) for item in items])
        return self.whole

    def partition(self, table, hash_key) -> tuple[list, list[tuple]]:
        """The items of one partition of ``table`` and their keys, in sort key order."""
        self._check(table)
        if hash_key not in self.partitions:
            items = sorted(table.items.get(hash_key, {}).values(), key=_dynamodb_item_key)
            self.partitions[hash_key] = (items, [_dynamodb_item_key(item) for item in items])
        return self.partitions[hash_key]


def _dynamodb_order(table) -> _TableOrder:
    """The table's sort orders, kept on moto's table object itself (gone with the table)."""
    order = table.__dict__.get("_ecomlib_order")
    if order is None:
        order = table.__dict__["_ecomlib_order"] = _TableOrder()
    return order


def _dynamodb_item_key(item) -> tuple:
    """The key moto sorts by (its DynamoType compares ``cast_value``), as plain values."""
    if item.range_key is None:
        return (item.hash_key.cast_value,)
    return (item.hash_key.cast_value, item.range_key.cast_value)


def _dynamodb_start_key(table, start: dict) -> tuple | None:
    """``ExclusiveStartKey`` as an item key, or None if it is not a key of this table
    (moto's own code then answers, as it would have)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    names = [(table.hash_key_attr, table.hash_key_type)]
    if table.range_key_attr:
        names.append((table.range_key_attr, table.range_key_type))
    key = []
    for name, kind in names:
        value = start.get(name)
        if not isinstance(value, dict) or list(value) != [kind]:
            return None
        key.append(DynamoType(value).cast_value)
    return tuple(key)


def _dynamodb_page_window(items: list, begin: int, end: int, forward: bool, limit: int | None,
                          condition: str | None, condition_values: list) -> tuple[int, int]:
    """The part of ``items[begin:end]`` (read forward or backward) that moto's page loop
    looks at: up to and including the item that ends the page, by ``Limit`` or by 1 MB
    (counting, like moto's loop, only the items that meet the sort key condition)."""
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT

    taken, size = 0, 0
    order = range(begin, end) if forward else range(end - 1, begin - 1, -1)
    for index in order:  # as moto's loop: any item may end the page, only a match is taken
        item = items[index]
        if taken == limit or size + item.size() > RESULT_SIZE_LIMIT:
            return (begin, index + 1) if forward else (index, end)
        if not condition or item.range_key.compare(condition, condition_values):
            taken += 1
            size += item.size()
    return begin, end


def _plain_scan(table, items, arguments: dict) -> tuple | None:
    """moto's own Scan loop, for a Scan without legacy filters or segments whose projection
    (if any) names top-level attributes: the same page (``Limit`` and 1 MB of whole items
    read, as AWS counts them; ``LastEvaluatedKey`` from the last item read; a
    ``FilterExpression`` applied after the read, so that ``ScannedCount`` counts what was read),
    at a fraction of the cost. moto 5.2 deep-copies each whole item, weighs it twice (each
    string encoded to UTF-8 again), then projects it by converting the item to plain Python
    and back (~100 µs an item of 3 KB). Here each item is weighed once, the filter reads it
    where it is, and only the attributes asked for are taken; the answer is written before
    the next request is served (``server.Serialised``), so nothing can change them meanwhile.
    Anything else (None) goes through moto's loop."""
    from moto.dynamodb.comparisons import OpDefault
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT

    projection = arguments.get("projection_expression") or []
    condition = arguments.get("filter_expression")
    if (arguments.get("filters") or tuple(arguments.get("segments") or (None, None)) != (None, None)
            or any(len(path) != 1 or "[" in path[0] for path in projection)):
        return None
    check = None if condition is None or type(condition) is OpDefault else condition
    names = [path[0] for path in projection]
    limit = arguments.get("limit")
    results, read, last_read, size, last_key = [], 0, None, 0, None
    for item in items:
        weight = item.size()
        if read == limit or size + weight > RESULT_SIZE_LIMIT:
            last_key = table._get_last_evaluated_key(last_read, None)  # noqa: SLF001
            break
        read, last_read, size = read + 1, item, size + weight
        if check is not None and not check.expr(item):
            continue
        answer = Item.__new__(Item)
        answer.hash_key, answer.range_key = item.hash_key, item.range_key
        answer.attrs = type(item.attrs)()
        for name, value in item.attrs.items():
            if not names or name in names:
                dict.__setitem__(answer.attrs, name, value)  # no size check: it was checked on write
        results.append(answer)
    return results, read, last_key


def _with_items(table, items, original, call):
    """Run moto's ``original(*call)`` with ``table.all_items()`` answering ``items``. (Requests
    are served one at a time, see ``server.Serialised``.)"""
    table.all_items = lambda: items  # the instance attribute hides the method ...
    try:
        return original(*call.args, **call.kwargs)
    finally:
        del table.all_items  # ... until this read is answered


def _patch_dynamodb_item_size() -> None:
    """Weigh a new item once, not once per attribute.

    AWS: an item may hold at most 400 KB (names and values, UTF-8), and a write of a
    bigger one is refused (``ValidationException: Item size has exceeded the maximum
    allowed size``). moto 5.2 checks it as each attribute is added to a new item, by
    weighing every attribute already there (each string encoded to UTF-8 again): an item
    of n attributes is weighed n times, and a BatchWriteItem of 25 invoice items of 3 KB
    spends most of its time there. Here a new item is built, then weighed once, with
    moto's own measure and limit (its ``ItemSizeTooLarge`` when over); later changes
    (UpdateItem) are still checked by moto as it sets each one.
    """
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    limit = 405_000  # moto's own (LimitedSizeDict.__setitem__), under DynamoDB's 400 KB (409,600 bytes)

    def build(original):
        def init(self: Item, hash_key, range_key, attrs: dict) -> None:
            self.hash_key, self.range_key = hash_key, range_key
            self.attrs = LimitedSizeDict()
            size = 0
            for key, value in attrs.items():
                typed = DynamoType(value)
                dict.__setitem__(self.attrs, key, typed)
                size += bytesize(key) + typed.size()
            if size > limit:
                raise ItemSizeTooLarge
        return init

    _replace(Item, "__init__", build)


def _patch_dynamodb_batch_write_keys() -> None:
    """Refuse a BatchWriteItem that names one item twice, as AWS does.

    AWS (BatchWriteItem API reference): the request is refused when it "contains at least
    two items with identical hash and range keys", or puts and deletes the same item:
    ``ValidationException: Provided list of item keys contains duplicates``. moto 5.2
    compares whole items, written out as JSON (25 invoice items: ~0.3 ms): two puts of one
    key with different attributes pass, and the last one wins. Here the keys are compared,
    per table, puts and deletes together; the rest is moto's BatchWriteItem (a missing
    table, an empty key and the answer as moto has them), without its whole-item check.
    """
    from moto.core.responses import ActionResult
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.responses import DynamoHandler, validate_put_has_empty_keys

    empty_key = ("One or more parameter values are not valid. The AttributeValue for a key attribute "
                 "cannot contain an empty string value. Key: {}")

    def key_of(attributes: dict, names: list[str]) -> tuple:
        """The item's key as a set member: 1 and 1.0 are one number, as in DynamoDB."""
        key = []
        for name in names:
            value = attributes.get(name)
            if isinstance(value, dict) and len(value) == 1:
                (kind, inner), = value.items()
                if kind == "N":
                    with contextlib.suppress(ArithmeticError, TypeError, ValueError):
                        inner = Decimal(inner).normalize()
                key.append((kind, inner if isinstance(inner, (str, Decimal)) else repr(inner)))
            else:
                key.append(repr(value))
        return tuple(key)

    def build(original):  # noqa: ARG001  (moto's own is replaced whole)
        def batch_write_item(self: DynamoHandler):
            backend = self.dynamodb_backend
            table_batches = self.body["RequestItems"]
            puts, deletes = [], []
            for table_name, requests in table_batches.items():
                table = backend.get_table(table_name)
                names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
                seen = set()
                for request in requests:
                    kind, body = next(iter(request.items()))
                    if kind == "PutRequest":
                        attributes = body["Item"]
                        validate_put_has_empty_keys(attributes, table, custom_error_msg=empty_key)
                        puts.append((table_name, attributes))
                    elif kind == "DeleteRequest":
                        attributes = body["Key"]
                        deletes.append((table_name, attributes))
                    else:
                        continue
                    key = key_of(attributes, names)
                    if key in seen:
                        raise MockValidationException("Provided list of item keys contains duplicates")
                    seen.add(key)
            for table_name, item in puts:
                backend.put_item(table_name, item)
            for table_name, keys in deletes:
                backend.delete_item(table_name, keys)
            return ActionResult({
                "ConsumedCapacity": [{"TableName": table_name, "CapacityUnits": 1.0, "Table": {"CapacityUnits": 1.0}}
                                     for table_name in table_batches],
                "ItemCollectionMetrics": {},
                "UnprocessedItems": {},
            })
        return batch_write_item

    _replace(DynamoHandler, "batch_write_item", build)


def _patch_dynamodb_request_values() -> None:
    """Read a DynamoDB request's plain values as they are.

    AWS: a BatchWriteItem of 25 items is read in well under a millisecond. moto 5.2 reads
    every value of a request by trying it against each of the ten members of
    ``AttributeValue`` (a BatchWriteItem of 25 invoice items: ~3 ms). Here a string, number,
    boolean or null (``{"S": ...}``, ``{"N": ...}``, ``{"BOOL": ...}``, ``{"NULL": true}``) is
    taken as it is, which is what moto's walk makes of it, and an item's attributes (a map
    of them) are read in one loop; ``B`` (base64 to decode), sets, ``M`` and ``L`` still go
    through moto's walk.
    """
    from moto.core.parse import BaseJSONParser

    plain = frozenset({"S", "N", "BOOL", "NULL"})

    def as_is(parser, value):
        """A plain AttributeValue as moto's walk would make it, or None for any other."""
        if type(value) is dict and len(value) == 1:
            (member, inner), = value.items()
            if member in plain and inner is not None:
                answer = parser.MAP_TYPE()
                answer[member] = inner
                return answer
        return None

    def build(original):
        def parse_structure(self, shape, value):
            if shape.name == "AttributeValue":
                answer = as_is(self, value)
                if answer is not None:
                    return answer
            return original(self, shape, value)
        return parse_structure

    def build_map(original):
        def parse_map(self, shape, value):  # an item: {name: AttributeValue}, read in one loop
            if shape.value.name != "AttributeValue" or type(value) is not dict:
                return original(self, shape, value)
            answer = self.MAP_TYPE()
            for name, attribute in value.items():
                plain_value = as_is(self, attribute)
                answer[name] = plain_value if plain_value is not None else self._parse_shape(shape.value, attribute)
            return answer
        return parse_map

    _replace(BaseJSONParser, "_parse_structure", build)
    _replace(BaseJSONParser, "_parse_map", build_map)


def _patch_request_overheads() -> None:
    """Take three costs off every request that AWS's answers do not have.

    moto 5.2, on every request: looks for a ``<RequestId>`` in the answer with a regular
    expression that tries each position of the body (a Scan page or a GetRecords answer of
    1 MB: ~20 ms), also in JSON answers, where there is none; lists its own package folder
    on disk to recognise service names; and inspects the response class for its method
    names. Here the expression runs only on a body that holds ``<RequestId>``, and the
    folder and the methods are listed once.
    """
    import functools

    import moto.backends
    import moto.core.responses
    from moto.core.responses import BaseResponse
    from moto.utilities.aws_headers import gen_amzn_requestid_long

    def build_enrich(original):
        original = original.__func__ if isinstance(original, staticmethod) else original

        def enrich(headers, body):
            if isinstance(body, str) and "<RequestId>" in body:
                return original(headers, body)
            if "status" in headers:
                headers["status"] = str(headers["status"])
            gen_amzn_requestid_long(headers)
            return headers, body
        return staticmethod(enrich)

    _replace(BaseResponse, "_enrich_response", build_enrich)

    # The names of a response class's methods, listed by inspecting the class on every
    # request: listed once per class, kept on the class, and listed again when a class of
    # its MRO gains or loses an attribute (a patch that adds a method).
    names_of = moto.core.responses.__dict__.get("_ecomlib_moto_method_names_from_class",
                                                moto.core.responses.method_names_from_class)
    moto.core.responses._ecomlib_moto_method_names_from_class = names_of

    def method_names(clazz) -> list[str]:
        if "_ecomlib_method_names" not in clazz.__dict__:
            clazz._ecomlib_method_names = None
        stamp = tuple(len(vars(c)) for c in clazz.__mro__)
        kept = clazz.__dict__["_ecomlib_method_names"]
        if kept is None or kept[0] != stamp:
            kept = clazz._ecomlib_method_names = (stamp, names_of(clazz))
        return kept[1]

    moto.core.responses.method_names_from_class = method_names
    modules = moto.backends.__dict__.get("_ecomlib_moto_list_of_moto_modules", moto.backends.list_of_moto_modules)
    moto.backends._ecomlib_moto_list_of_moto_modules = modules
    listed = functools.cache(lambda: tuple(modules()))
    moto.backends.list_of_moto_modules = listed


def _patch_dynamodb_scan_count() -> None:
    """Answer a Scan with ``Select="COUNT"`` with the count only.

    AWS: a Scan with ``Select="COUNT"`` answers ``Count`` and ``ScannedCount`` and no
    ``Items`` (it still reads, and bills, every item it passes: pages of at most 1 MB read).
    moto 5.2 drops the items of such a Query, but sends every item of such a Scan back.
    Here the Scan projects each item onto the table's partition key (moto's pages stay cut
    at 1 MB of whole items, as AWS reads them) and the answer leaves ``Items`` out.
    AWS also refuses ``Select="COUNT"`` with a projection (API reference, Scan ``Select``:
    with ``ProjectionExpression`` the only value allowed is ``SPECIFIC_ATTRIBUTES``),
    ``ValidationException: Cannot specify the ProjectionExpression when choosing to get
    COUNT``; moto answers it. Here it is refused.
    """
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.responses import DynamoHandler

    def build(original):
        def scan(self: DynamoHandler):
            if str(self.body.get("Select", "")).upper() != "COUNT":
                return original(self)
            for given in ("ProjectionExpression", "AttributesToGet"):
                if given in self.body:
                    raise MockValidationException(f"Cannot specify the {given} when choosing to get COUNT")
            try:
                key = self.dynamodb_backend.get_table(self.body["TableName"]).hash_key_attr
            except Exception:  # noqa: BLE001 - moto answers a missing table its own way
                return original(self)
            self.body["ProjectionExpression"] = "#ecomlib_count_key"
            self.body["ExpressionAttributeNames"] = {**self.body.get("ExpressionAttributeNames", {}),
                                                     "#ecomlib_count_key": key}
            answer = original(self)
            answer.result.pop("Items", None)
            return answer

        return scan

    _replace(DynamoHandler, "scan", build)


def _patch_s3_listing() -> None:
    """Make a ListObjectsV2 page cost the same whether it is the first or the hundredth.

    AWS: a listing returns up to ``MaxKeys`` keys in UTF-8 order, each page resuming after
    the last key of the one before (``ContinuationToken``, or ``StartAfter``). moto 5.2:
    every page collects and sorts every key of the bucket, then walks them up to the token,
    so the backend's cost per key grows with the bucket (8.5 µs a key at 4,000 keys,
    99 µs at 40,000). Here a listing without ``Delimiter`` starts by bisection in the
    bucket's sorted key names, kept until a key is written or deleted, and takes keys until
    the page is full, skipping delete markers as moto does; the page, ``IsTruncated`` and
    the token are moto's (its token table resolves the next ``ContinuationToken``).
    Listings with a delimiter, or an unknown token, are left to moto.
    """
    from moto.s3.models import FakeDeleteMarker, FakeTableStorageBucket, S3Backend
    from moto.s3.utils import _VersionedKeyStore
    from moto.utilities.utils import md5_hash

    def build_write(original_write):
        def write(self, *args, **kwargs):
            try:
                return original_write(self, *args, **kwargs)
            finally:
                self._ecomlib_writes = self.__dict__.get("_ecomlib_writes", 0) + 1
        return write

    for name in ("__setitem__", "pop", "setlist"):
        _replace(_VersionedKeyStore, name, build_write)

    def build(original):
        def list_objects_v2(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys):
            after = self._pagination_tokens.get(continuation_token) if continuation_token else start_after
            if delimiter or isinstance(bucket, FakeTableStorageBucket) or not max_keys or (
                    continuation_token and after is None):
                return original(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys)
            names = _s3_sorted_names(bucket)
            index = bisect.bisect_right(names, after) if after else 0
            if prefix:
                index = max(index, bisect.bisect_left(names, prefix))
            page = []
            while index < len(names) and len(page) <= max_keys:
                name = names[index]
                if prefix and not name.startswith(prefix):
                    break
                key = bucket.keys.get(name)
                if key is not None and not isinstance(key, FakeDeleteMarker):
                    page.append(key)
                index += 1
            if len(page) <= max_keys:
                return page, False, None
            page = page[:max_keys]
            token = md5_hash(page[-1].name.encode("utf-8")).hexdigest()
            self._pagination_tokens[token] = page[-1].name
            return page, True, token
        return list_objects_v2

    _replace(S3Backend, "list_objects_v2", build)


def _s3_sorted_names(bucket) -> list[str]:
    """A bucket's key names in order, rebuilt after a key is written or deleted (kept on
    moto's bucket object itself, gone with the bucket)."""
    store = bucket.keys
    writes = store.__dict__.get("_ecomlib_writes", 0)
    cached = bucket.__dict__.get("_ecomlib_sorted_names")
    if cached is None or cached[0] is not store or cached[1] != writes:
        cached = bucket.__dict__["_ecomlib_sorted_names"] = (store, writes, sorted(dict.keys(store)))
    return cached[2]


def _patch_redshift_iam_roles() -> None:
    """Answer ModifyClusterIamRoles.

    AWS: adds or removes the IAM roles a cluster may assume (for COPY from S3 with
    ``IAM_ROLE '<arn>'``) and sets its default role (``DefaultIamRoleArn``, what
    ``IAM_ROLE default`` means). moto 5.2 stores roles given at CreateCluster but does not
    implement this call.
    """
    from moto.core.responses import ActionResult
    from moto.redshift.responses import RedshiftResponse

    def modify_cluster_iam_roles(self):
        cluster = self.redshift_backend.describe_clusters(self._get_param("ClusterIdentifier"))[0]
        removed = set(self._get_param("RemoveIamRoles", []))
        roles = [arn for arn in cluster.iam_roles_arn if arn not in removed]
        roles += [arn for arn in self._get_param("AddIamRoles", []) if arn not in roles]
        cluster.iam_roles_arn = roles
        if self._get_param("DefaultIamRoleArn"):
            cluster.default_iam_role_arn = self._get_param("DefaultIamRoleArn")
        elif cluster.default_iam_role_arn in removed:
            cluster.default_iam_role_arn = None
        return ActionResult({"Cluster": cluster})

    _replace(RedshiftResponse, "modify_cluster_iam_roles", lambda original: modify_cluster_iam_roles)


def _patch_cloudformation(runtime) -> None:
    """Let CloudFormation create the course's Redshift cluster and Firehose delivery stream.

    AWS: ``AWS::Redshift::Cluster`` is named by ``ClusterIdentifier`` and may assume the
    ``IamRoles`` it lists; ``AWS::KinesisFirehose::DeliveryStream`` creates a delivery
    stream. moto 5.2: the cluster gets a generated name and no roles (its physical id is
    empty, so deleting the stack leaves it behind) and ``Endpoint.Address`` is the whole
    endpoint map; Firehose resources are skipped without an error. Deleting a stack
    leaves its REST API behind, and a role's inline policies are kept as Python text
    (``{'Version': ...}``), not JSON. Also: CloudFormation waits for a function to be
    Active before the stack is complete, so a stack's functions are not left Pending here.
    """
    from moto.apigateway.models import RestAPI, apigateway_backends
    from moto.iam.models import Role
    from moto.core.common_models import CloudFormationModel
    from moto.firehose.models import firehose_backends
    from moto.redshift.models import Cluster, redshift_backends

    def build_create_cluster(original):
        return classmethod(lambda cls, *args, **kwargs: create_cluster(original.__func__, cls, *args, **kwargs))

    def create_cluster(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        name = properties.get("ClusterIdentifier") or resource_name
        cluster = original(cls, name, cloudformation_json, account_id, region_name, **kwargs)
        cluster.iam_roles_arn = list(properties.get("IamRoles", []))
        _manage_cluster(cluster, bool(properties.get("ManageMasterPassword")), properties.get("DefaultIamRoleArn"))
        return cluster

    def delete_cluster(cls, resource_name, cloudformation_json, account_id, region_name):
        backend = redshift_backends[account_id][region_name]
        if resource_name in backend.clusters:
            backend.delete_cluster(cluster_identifier=resource_name, skip_final_snapshot=True,
                                   final_cluster_snapshot_identifier=None)

    _replace(Cluster, "create_from_cloudformation_json", build_create_cluster)
    _replace(Cluster, "delete_from_cloudformation_json", lambda original: classmethod(delete_cluster))
    _replace(Cluster, "physical_resource_id", lambda original: property(lambda self: self.cluster_identifier))

    def build_get_cfn_attribute(original_attribute):
        return lambda self, attribute_name: get_cfn_attribute(self, attribute_name, original_attribute)

    def get_cfn_attribute(self, attribute_name, original_attribute):  # moto returns the whole Endpoint map
        endpoint = self.endpoint if isinstance(self.endpoint, dict) else {"Address": self.endpoint, "Port": self.port}
        if attribute_name == "Endpoint.Address":
            return endpoint["Address"]
        if attribute_name == "Endpoint.Port":
            return str(endpoint.get("Port", self.port))
        if attribute_name == "MasterPasswordSecretArn":
            return self.master_password_secret_arn
        return original_attribute(self, attribute_name)

    _replace(Cluster, "get_cfn_attribute", build_get_cfn_attribute)
    _replace(Cluster, "has_cfn_attr", lambda original: classmethod(
        lambda cls, attr: attr == "MasterPasswordSecretArn" or original.__func__(cls, attr)))

    def delete_rest_api(cls, resource_name, cloudformation_json, account_id, region_name):
        backend = apigateway_backends[account_id][region_name]
        if resource_name in backend.apis:
            backend.delete_rest_api(resource_name)

    _replace(RestAPI, "delete_from_cloudformation_json", lambda original: classmethod(delete_rest_api))

    # AWS updates a stack's resource only when its properties changed: a function whose
    # Code (S3Bucket/S3Key) is the same keeps its old code even if the object under that
    # key was overwritten (hence content-addressed keys, as `aws cloudformation package`
    # makes). moto re-reads the code on every stack update.
    from moto.awslambda.models import LambdaFunction

    def code_of(cloudformation_json) -> str:
        return json.dumps(cloudformation_json["Properties"].get("Code"), sort_keys=True)

    def build_create_function(original):
        def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            fn = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
            fn._ecomlib_cfn_code = code_of(cloudformation_json)
            runtime.settled(fn)  # CloudFormation waits for Active before the resource is complete
            return fn
        return classmethod(create)

    def build_update_function(original):
        def update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
            if original_resource.__dict__.get("_ecomlib_cfn_code") != code_of(cloudformation_json):
                original_resource = original.__func__(cls, original_resource, new_resource_name, cloudformation_json,
                                                      account_id, region_name)
            else:  # the configuration only
                original_resource.update_configuration(cloudformation_json["Properties"])
            original_resource._ecomlib_cfn_code = code_of(cloudformation_json)
            return original_resource
        return classmethod(update)

    _replace(LambdaFunction, "create_from_cloudformation_json", build_create_function)
    _replace(LambdaFunction, "update_from_cloudformation_json", build_update_function)

    def build_put_policy(original_put_policy):
        def put_policy(self, policy_name, policy_json):  # a stack's inline policy, kept as JSON text
            return original_put_policy(self, policy_name, policy_json if isinstance(policy_json, str)
                                       else json.dumps(policy_json))
        return put_policy

    _replace(Role, "put_policy", build_put_policy)

    if any(c.__name__ == "DeliveryStreamResource" for c in CloudFormationModel.__subclasses__()):
        return  # defined by an earlier apply(): CloudFormation finds models by subclass

    class DeliveryStreamResource(CloudFormationModel):
        """``AWS::KinesisFirehose::DeliveryStream`` through moto's Firehose backend."""

        def __init__(self, name: str) -> None:
            self.name = name

        @property
        def physical_resource_id(self) -> str:
            return self.name

        @staticmethod
        def cloudformation_name_type() -> str:
            return "DeliveryStreamName"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::KinesisFirehose::DeliveryStream"

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                            **kwargs):
            p = cloudformation_json["Properties"]
            firehose_backends[account_id][region_name].create_delivery_stream(
                region_name, p.get("DeliveryStreamName") or resource_name, p.get("DeliveryStreamType", "DirectPut"),
                p.get("KinesisStreamSourceConfiguration"), p.get("DeliveryStreamEncryptionConfigurationInput"),
                p.get("S3DestinationConfiguration"), p.get("ExtendedS3DestinationConfiguration"),
                p.get("RedshiftDestinationConfiguration"), p.get("ElasticsearchDestinationConfiguration"),
                p.get("SplunkDestinationConfiguration"), p.get("HttpEndpointDestinationConfiguration"),
                p.get("SnowflakeDestinationConfiguration"), p.get("Tags", []))
            return cls(p.get("DeliveryStreamName") or resource_name)

        @classmethod
        def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                            account_id, region_name):
            return original_resource

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            backend = firehose_backends[account_id][region_name]
            if resource_name in backend.delivery_streams:
                backend.delete_delivery_stream(resource_name)

        def is_created(self) -> bool:
            return True

    from moto.cloudformation import parsing

    parsing.get_model_map.cache_clear()  # the new model joins the map


def _patch_lambda_invoke(runtime) -> None:
    """Run a function's code when it is invoked.

    AWS: Invoke runs the function in an execution environment and answers with its result
    (``x-amz-function-error``, ``x-amz-log-result`` with ``LogType=Tail``). moto 5.2 runs
    the code in Docker, and without Docker answers "error running docker". Here
    :meth:`LambdaRuntime.moto_invoke` runs it in a worker process (same request, same response).
    """
    from moto.awslambda.models import LambdaFunction

    def build(original):  # noqa: ARG001
        def invoke(self, body, request_headers, response_headers):
            return _lambda_refusals(lambda: runtime.moto_invoke(self, body, request_headers, response_headers))
        return invoke

    _replace(LambdaFunction, "invoke", build)


def _patch_lambda_strictness(runtime) -> None:
    """Function states, update conflicts, payload limits and the concurrency quota.

    AWS (Lambda developer guide, "Lambda function states" and "Lambda quotas";
    configuration-concurrency): a new function is ``Pending`` until ready and may not be
    invoked or updated meanwhile; an update sets ``LastUpdateStatus: InProgress`` and
    another update is refused until it is done (``ResourceConflictException``); a
    synchronous request over 6 MB is refused (``RequestEntityTooLargeException``, 413);
    reserved concurrency may not leave less than the minimum unreserved
    (``InvalidParameterValueException``), and a new account's quota is 10.
    moto 5.2: every function is ``Active`` at once, updates never conflict, any payload is
    taken, a response over 6,000,000 bytes (sys.getsizeof) is refused, and reservations are
    checked only against ``MOTO_LAMBDA_CONCURRENCY_QUOTA`` with a fixed minimum of 100. The states and limits live in
    :class:`~ecomlib.local.lambda_runtime.LambdaRuntime`.
    """
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.awslambda.models import LambdaBackend, LambdaFunction

    from ecomlib.local.lambda_runtime import UNRESERVED_BELOW_MINIMUM, concurrency_quota

    def build_create(original):
        def create_function(self, spec):
            fn = original(self, spec)
            runtime.created(self.get_function(fn.function_name))
            return fn
        return create_function

    def build_update(original):
        def update(self, function_name, qualifier, body):
            fn = self.get_function(function_name, qualifier)
            _lambda_refusals(lambda: runtime.updating(fn))
            return original(self, function_name, qualifier, body)
        return update

    def build_get_configuration(original):
        def get_configuration(self, *args, **kwargs):
            return runtime.state_of(self, original(self, *args, **kwargs))
        return get_configuration

    def put_function_concurrency(self, function_name: str, reserved_concurrency: str):
        quota, minimum = concurrency_quota()
        reserved = sum(int(f.reserved_concurrency) for f in self.list_functions()
                       if f.reserved_concurrency and f.function_name != function_name)
        if quota - reserved - int(reserved_concurrency) < minimum:
            raise InvalidParameterValueException(UNRESERVED_BELOW_MINIMUM.format(minimum=minimum))
        fn = self.get_function(function_name)
        fn.reserved_concurrency = reserved_concurrency
        return fn.reserved_concurrency

    _replace(LambdaBackend, "create_function", build_create)
    _replace(LambdaBackend, "update_function_code", build_update)
    _replace(LambdaBackend, "update_function_configuration", build_update)
    _replace(LambdaFunction, "get_configuration", build_get_configuration)
    _replace(LambdaBackend, "put_function_concurrency", lambda original: put_function_concurrency)

    # moto's Invoke answer replaces any payload over sys.getsizeof 6,000,000 (< AWS's 6 MB)
    # with Function.ResponseSizeTooLarge; the runtime applies AWS's limit itself, exactly.
    from urllib.parse import unquote

    from moto.awslambda.responses import LambdaResponse
    from moto.utilities.aws_headers import amz_crc32

    @amz_crc32
    def invoke(self):
        response_headers: dict[str, str] = {}
        function_name = unquote(self.path.rsplit("/", 2)[-2])
        payload = self.backend.invoke(function_name, self._get_param("qualifier"), self.body, self.headers,
                                      response_headers)
        if payload is None:
            return 404, response_headers, "{}"
        response_headers["content-type"] = "application/json"
        kind = self.headers.get("X-Amz-Invocation-Type")
        if kind in ("Event", "DryRun"):
            status = 202 if kind == "Event" else 204
            response_headers["status"] = str(status)
            return status, response_headers, payload
        if self.headers.get("X-Amz-Log-Type") != "Tail":
            response_headers.pop("x-amz-log-result", None)
        return 200, response_headers, payload

    _replace(LambdaResponse, "invoke", lambda original: invoke)


def _lambda_refusals(call: Callable[[], Any]) -> Any:
    """``call()``, with the runtime's refusals raised as moto errors (AWS's codes and statuses)."""
    from moto.awslambda.exceptions import LambdaClientError

    from ecomlib.local.lambda_runtime import LambdaConflict, PayloadTooLarge

    try:
        return call()
    except LambdaConflict as exc:
        error = LambdaClientError("ResourceConflictException", str(exc))
        error.code = 409
        raise error from None
    except PayloadTooLarge as exc:
        error = LambdaClientError("RequestEntityTooLargeException", str(exc))
        error.code = 413
        raise error from None


def _patch_iam_authorization(iam) -> None:
    """Check every call made with a role's credentials against the role (on by default).

    AWS: every request is allowed only if the caller's policies allow the action on the
    resource, under their conditions. moto 5.2: checks nothing by default, and its opt-in
    checks apply to every caller and, outside S3, never match a statement scoped to a
    resource. Here :meth:`IamEnforcement.authorize` decides (see ``iam_enforcement``).
    """
    from moto.core.authorization import ActionAuthenticatorMixin

    def build(original):  # noqa: ARG001
        def authenticate_and_authorize(self, iam_request_cls, resource: str = "*") -> None:
            iam.authorize(self, iam_request_cls, resource)
        return authenticate_and_authorize

    _replace(ActionAuthenticatorMixin, "_authenticate_and_authorize_action", build)


def _patch_events(scheduler) -> None:
    """PutRule checks schedule expressions; PutEvents reaches Lambda targets.

    AWS: PutRule refuses a bad ``ScheduleExpression`` with a ValidationException; PutEvents
    delivers an event to the targets of the rules whose pattern matches (Lambda functions
    asynchronously, if their policy lets EventBridge invoke them), never to scheduled
    rules. moto 5.2: accepts most bad expressions, raises NotImplementedError for Lambda
    targets and delivers events to scheduled rules too. Scheduled rules fire from
    :class:`~ecomlib.local.scheduler.Scheduler`.
    """
    from moto.events import models

    from ecomlib.local.scheduler import validate_expression

    def build_put_rule(original_put_rule):
        def put_rule(self, name: str, *args, **kwargs):
            expression = kwargs.get("scheduled_expression")
            if expression:
                validate_expression(expression)
            return original_put_rule(self, name, *args, **kwargs)
        return put_rule

    def build_send_to_targets(original_send):
        def send_to_targets(self, original_event, transform_input: bool = True) -> None:
            if self.scheduled_expression and not self.event_pattern.get_pattern():
                return  # scheduled rules fire on time, not on events
            if not self.event_pattern.matches_event(original_event):
                return
            targets = list(self.targets)
            others = scheduler.send_to_lambda_targets(self, original_event)
            if others:
                self.targets = others
                try:
                    original_send(self, original_event, transform_input)
                finally:
                    self.targets = targets
        return send_to_targets

    _replace(models.EventsBackend, "put_rule", build_put_rule)
    _replace(models.Rule, "send_to_targets", build_send_to_targets)


def _patch_redshift_data(data) -> None:
    """Run Redshift Data API statements on the local warehouse; keep data across a rename.

    AWS: ExecuteStatement runs the SQL on the cluster, DescribeStatement reports how it
    ended, GetStatementResult pages its rows; BatchExecuteStatement, ListStatements and
    CancelStatement exist; deleting a cluster deletes its data, renaming keeps it. moto
    5.2: runs nothing, stays STARTED, returns three canned rows, and implements neither
    batches nor listing. Here :class:`~ecomlib.local.redshift_data.RedshiftData` answers.
    """
    from moto.redshift.models import RedshiftBackend
    from moto.redshiftdata.responses import RedshiftDataAPIServiceResponse as Response

    from ecomlib.local.redshift_data import describe, list_statements

    def answer(build: Callable[[Any], dict]) -> Callable[[Any], Callable]:
        def method(self):
            return 200, {}, json.dumps(build(self))
        method.__name__ = build.__name__
        return lambda original: method

    _replace(Response, "execute_statement", answer(lambda self: data.submit(self, [self._get_param("Sql")], False)))
    _replace(Response, "batch_execute_statement",
             answer(lambda self: data.submit(self, list(self._get_param("Sqls") or []), True)))
    _replace(Response, "describe_statement", answer(describe))
    _replace(Response, "get_statement_result", answer(data.result_page))
    _replace(Response, "list_statements", answer(list_statements))
    _replace(Response, "cancel_statement", answer(data.cancel))

    renaming = threading.local()

    def build_delete(original_delete):
        def delete_cluster(self, **kwargs):
            cluster = original_delete(self, **kwargs)
            if not getattr(renaming, "active", False):
                data.drop_warehouse(cluster.cluster_identifier)  # its data goes with it, as on AWS
                _forget_managed_secret(cluster)  # and so does the admin secret Redshift manages
            return cluster
        return delete_cluster

    def build_modify(original_modify):
        def modify_cluster(self, **kwargs):
            # moto renames a cluster by deleting it and adding it back: keep its data.
            renaming.active = True
            try:
                cluster = original_modify(self, **kwargs)
            finally:
                renaming.active = False
            old, new = kwargs.get("cluster_identifier"), kwargs.get("new_cluster_identifier")
            if old and new and old != new:
                data.rename_warehouse(old, new)
            return cluster
        return modify_cluster

    _replace(RedshiftBackend, "delete_cluster", build_delete)
    _replace(RedshiftBackend, "modify_cluster", build_modify)


def _patch_create_time_tags() -> None:
    """Keep the tags given when a bucket, a stream or a stack is created.

    AWS: ``CreateBucket`` tags the bucket with ``CreateBucketConfiguration.Tags``;
    ``CreateStream`` tags the stream with ``Tags``; a stack's tags (``CreateStack``
    ``Tags``) are given to every resource of the stack that takes tags. moto 5.2 drops
    all three, and its stacks ignore the ``Tags`` of Lambda functions, REST APIs and
    Redshift clusters. ``ecomlib.teardown`` finds a learner's resources by these tags.
    """
    import xmltodict
    from moto.apigateway.models import RestAPI
    from moto.awslambda.models import LambdaFunction, lambda_backends
    from moto.cloudformation import parsing
    from moto.kinesis.responses import KinesisResponse
    from moto.redshift.models import Cluster
    from moto.s3.responses import S3Response

    def build_bucket_put(original_bucket_put):
        def bucket_response_put(self, request, bucket_name, querystring):
            answer = original_bucket_put(self, request, bucket_name, querystring)
            if not querystring and self.body:
                configuration = xmltodict.parse(self.body).get("CreateBucketConfiguration") or {}
                tags = ((configuration.get("Tags") or {}).get("Tag")) or []
                tags = [tags] if isinstance(tags, dict) else tags
                if tags:
                    self.backend.put_bucket_tagging(bucket_name, {t["Key"]: t["Value"] for t in tags})
            return answer
        return bucket_response_put

    _replace(S3Response, "_bucket_response_put", build_bucket_put)

    def build_create_stream(original_create_stream):
        def create_stream(self):
            answer = original_create_stream(self)
            if self._get_param("Tags"):
                self.kinesis_backend.add_tags_to_stream(None, self._get_param("StreamName"), self._get_param("Tags"))
            return answer
        return create_stream

    _replace(KinesisResponse, "create_stream", build_create_stream)

    # A module function, not a class attribute: keep moto's original once, on the module.
    if not hasattr(parsing, "_ecomlib_moto_parse_and_create_resource"):
        parsing._ecomlib_moto_parse_and_create_resource = parsing.parse_and_create_resource
    original_create = parsing._ecomlib_moto_parse_and_create_resource

    def parse_and_create_resource(logical_id, resource_json, resources_map, account_id, region_name):
        stack_tags = {k: v for k, v in (resources_map.tags or {}).items() if not k.startswith("aws:")}
        if stack_tags:  # the resource's own tags win over the stack's
            properties = dict(resource_json.get("Properties") or {})
            own = {t["Key"]: t["Value"] for t in properties.get("Tags") or []}
            properties["Tags"] = [{"Key": k, "Value": v} for k, v in {**stack_tags, **own}.items()]
            resource_json = {**resource_json, "Properties": properties}
        resource = original_create(logical_id, resource_json, resources_map, account_id, region_name)
        tags = {t["Key"]: t["Value"] for t in (resource_json.get("Properties") or {}).get("Tags") or []}
        if tags and isinstance(resource, LambdaFunction):
            lambda_backends[account_id][region_name].tag_resource(resource.function_arn, tags)
        elif tags and isinstance(resource, RestAPI):
            resource.tags = {**(resource.tags or {}), **tags}
        elif tags and isinstance(resource, Cluster):
            resource.create_tags([{"Key": k, "Value": v} for k, v in tags.items()])
        return resource

    parsing.parse_and_create_resource = parse_and_create_resource


def _patch_mapping_starting_timestamp() -> None:
    """A stream mapping that starts ``AT_TIMESTAMP`` needs its timestamp, and says it.

    AWS (CreateEventSourceMapping): with ``StartingPosition=AT_TIMESTAMP`` the mapping
    starts at ``StartingPositionTimestamp`` (Unix seconds); without one the call is refused
    with ``InvalidParameterValueException: Need to specify a timestamp``; the mapping's
    description gives the timestamp back. moto 5.2 accepts the mapping without one and
    leaves the timestamp out of the description (and its poller then read from the
    oldest record). Where reading starts: ``ecomlib.local.stream_pollers._start``. Not
    checked here (AWS's error texts unknown): a timestamp in the future, and AT_TIMESTAMP
    on a DynamoDB stream (AWS supports it for Kinesis, not DynamoDB Streams).
    """
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.awslambda.models import EventSourceMapping, LambdaBackend

    def build_create(original):
        def create_event_source_mapping(self, spec):
            if (spec.get("StartingPosition") == "AT_TIMESTAMP" and spec.get("StartingPositionTimestamp") is None
                    and ":kinesis:" in str(spec.get("EventSourceArn", ""))):
                raise InvalidParameterValueException("Need to specify a timestamp")
            return original(self, spec)
        return create_event_source_mapping

    def build_configuration(original):
        def get_configuration(self):
            config = original(self)
            if self.starting_position == "AT_TIMESTAMP" and self.starting_position_timestamp is not None:
                config["StartingPositionTimestamp"] = self.starting_position_timestamp
            return config
        return get_configuration

    _replace(LambdaBackend, "create_event_source_mapping", build_create)
    _replace(EventSourceMapping, "get_configuration", build_configuration)


def _patch_mapping_states(pollers) -> None:
    """Event source mappings pass through states, and refuse changes meanwhile.

    AWS (Lambda API reference, EventSourceMappingConfiguration ``State``; exceptions of
    UpdateEventSourceMapping / DeleteEventSourceMapping): a new mapping is ``Creating``,
    then ``Enabled`` (or ``Disabled``); changing ``Enabled`` makes it ``Enabling`` /
    ``Disabling``, other changes ``Updating``; DeleteEventSourceMapping answers
    ``Deleting`` and the mapping is listed until it is gone. An update or a delete
    meanwhile is refused with ResourceInUseException; a second mapping of the same
    function and stream with ResourceConflictException. moto 5.2: every mapping is
    Enabled (or Disabled) at once and gone at once. Here
    :class:`~ecomlib.local.stream_pollers.StreamPollers` keeps the states (for
    ``aws_time``'s ``mapping_transition``) and polls only Enabled mappings.
    """
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda.models import EventSourceMapping, LambdaBackend

    from ecomlib.local.stream_pollers import TRANSITIONS

    class ResourceInUse(LambdaClientError):
        def __init__(self, action: str) -> None:
            super().__init__("ResourceInUseException",
                             f"Cannot {action} the event source mapping because it is in use.")

    class MappingExists(LambdaClientError):
        code = 409

        def __init__(self, esm) -> None:
            super().__init__(
                "ResourceConflictException",
                f'The event source arn (" {esm.event_source_arn} ") and function (" {esm.function_name} ") '
                f"provided mapping already exists. Please update or delete the existing mapping with UUID {esm.uuid}")

    def purge(backend: LambdaBackend) -> None:
        """Forget the mappings whose deletion is over."""
        for uuid, esm in list(backend._event_source_mappings.items()):  # noqa: SLF001
            if pollers.state(esm) == "Deleted":
                backend._event_source_mappings.pop(uuid, None)  # noqa: SLF001
                pollers.transitions.pop(uuid, None)

    def build_create(original):
        def create_event_source_mapping(self, spec):
            purge(self)
            esm = original(self, spec)
            for other in list(self._event_source_mappings.values()):  # noqa: SLF001
                if (other is not esm and other.event_source_arn == esm.event_source_arn
                        and other.function_arn == esm.function_arn):
                    self._event_source_mappings.pop(esm.uuid, None)  # noqa: SLF001
                    raise MappingExists(other)
            pollers.begin(esm.uuid, "Creating")
            return esm
        return create_event_source_mapping

    def build_update(original):
        def update_event_source_mapping(self, uuid, spec):
            purge(self)
            esm = self._event_source_mappings.get(uuid)  # noqa: SLF001
            if esm is None:
                return None
            if pollers.state(esm) in TRANSITIONS:
                raise ResourceInUse("update")
            was_enabled = esm.enabled
            esm = original(self, uuid, spec)
            if esm.enabled != was_enabled:
                pollers.begin(uuid, "Enabling" if esm.enabled else "Disabling")
            else:
                pollers.begin(uuid, "Updating")
            return esm
        return update_event_source_mapping

    def build_delete(original):  # noqa: ARG001  (moto forgets it at once)
        def delete_event_source_mapping(self, uuid):
            purge(self)
            esm = self._event_source_mappings.get(uuid)  # noqa: SLF001
            if esm is None:
                return None
            if pollers.state(esm) in TRANSITIONS:
                raise ResourceInUse("delete")
            pollers.begin(uuid, "Deleting")
            return esm
        return delete_event_source_mapping

    def build_read(original):
        def read(self, *args, **kwargs):
            purge(self)
            return original(self, *args, **kwargs)
        return read

    def build_stack_delete(original):
        def delete(self, account_id, region_name):
            # CloudFormation waits for a mapping to settle before it deletes it.
            import time

            deadline = time.monotonic() + 60
            while pollers.state(self) in TRANSITIONS and time.monotonic() < deadline:
                time.sleep(0.01)
            return original(self, account_id, region_name)
        return delete

    _replace(EventSourceMapping, "delete", build_stack_delete)

    def build_configuration(original):
        def get_configuration(self):
            config = original(self)
            config["State"] = pollers.state(self)
            return config
        return get_configuration

    _replace(LambdaBackend, "create_event_source_mapping", build_create)
    _replace(LambdaBackend, "update_event_source_mapping", build_update)
    _replace(LambdaBackend, "delete_event_source_mapping", build_delete)
    _replace(LambdaBackend, "get_event_source_mapping", build_read)
    _replace(LambdaBackend, "list_event_source_mappings", build_read)
    _replace(EventSourceMapping, "get_configuration", build_configuration)


def _patch_sqs_deleted_recently() -> None:
    """Refuse a queue name deleted less than 60 seconds ago.

    AWS (SQS API reference, CreateQueue and DeleteQueue): "You must wait 60 seconds after
    deleting a queue before you can create another with the same name."
    (``AWS.SimpleQueueService.QueueDeletedRecently``). moto 5.2: the name is free at once.
    Here each region's backend remembers when each name was deleted (``aws_time``'s
    ``sqs_deleted_recently``); a reset forgets it with the backend.
    """
    from moto.sqs.exceptions import SQSException
    from moto.sqs.models import SQSBackend

    from ecomlib.local import aws_time

    class QueueDeletedRecently(SQSException):
        code = "AWS.SimpleQueueService.QueueDeletedRecently"
        message = ("You must wait 60 seconds after deleting a queue before you can create another "
                   "with the same name.")

    def deleted(backend) -> dict:
        return backend.__dict__.setdefault("_ecomlib_deleted_queues", {})

    def build_create(original):
        def create_queue(self, name, *args, **kwargs):
            recently = deleted(self).get(name)
            if recently is not None and not recently.ready and name not in self.queues:
                raise QueueDeletedRecently()
            return original(self, name, *args, **kwargs)
        return create_queue

    def build_delete(original):
        def delete_queue(self, queue_name):
            original(self, queue_name)
            deleted(self)[queue_name] = aws_time.Pending("sqs_deleted_recently")
        return delete_queue

    _replace(SQSBackend, "create_queue", build_create)
    _replace(SQSBackend, "delete_queue", build_delete)


def _patch_ec2_security_group_in_use() -> None:
    """Refuse to delete a security group that a Redshift cluster still uses.

    AWS (EC2 API reference, DeleteSecurityGroup): a group still associated with a
    resource (a cluster, also while it is being deleted) cannot be deleted:
    ``DependencyViolation: resource sg-... has a dependent object``. moto 5.2 deletes it.
    Here every cluster that moto still lists (whatever its status) holds its groups.
    """
    from moto.ec2.exceptions import DependencyViolationError
    from moto.ec2.models import EC2Backend
    from moto.redshift.models import redshift_backends

    def build(original):
        def delete_security_group(self, name=None, group_id=None):
            group = self.get_security_group_by_name_or_id(group_id or name)
            if group is not None:
                backend = redshift_backends[self.account_id].get(self.region_name)
                clusters = list(backend.clusters.values()) if backend else []
                if any(group.id in (c.vpc_security_group_ids or []) for c in clusters):
                    raise DependencyViolationError(f"resource {group.id} has a dependent object")
            return original(self, name=name, group_id=group_id)
        return delete_security_group

    _replace(EC2Backend, "delete_security_group", build)


def _patch_redshift_cluster_states() -> None:
    """A new cluster is ``creating`` for a while; Redshift can manage its admin password.

    AWS: CreateCluster answers ``creating``, and the cluster is ``available`` minutes later
    (the ``cluster_available`` waiter polls every 60 s); SQL needs it available.
    ``ManageMasterPassword=True`` makes Redshift generate the admin password and keep it in
    a Secrets Manager secret (``MasterPasswordSecretArn``, ``{"username": ..., "password":
    ...}``; deleted with the cluster; ModifyCluster with ``ManageMasterPassword=True`` turns
    it on for an existing cluster); ``DefaultIamRoleArn`` names the role ``IAM_ROLE
    default`` uses. moto 5.2: a cluster is ``available`` at once; ``ManageMasterPassword``
    and ``DefaultIamRoleArn`` are ignored (no secret, no ARN in the description).
    Here: ``ClusterStatus`` is ``creating`` for :data:`aws_time.AWS_SECONDS`
    ``redshift_creating`` (compressed), then moto's own status; the secret is made in
    moto's Secrets Manager with a random password that the cluster keeps (Firehose's
    sign-in is checked against it, see ``firehose``).
    """
    from moto.redshift.models import Cluster
    from moto.redshift.responses import RedshiftResponse

    from ecomlib.local import aws_time

    _replace(Cluster, "master_password_secret_arn", lambda original: None)
    _replace(Cluster, "default_iam_role_arn", lambda original: None)

    def get_status(self) -> str:
        status = self.__dict__.get("_ecomlib_status", "available")
        ready = self.__dict__.get("_ecomlib_ready")
        if status == "available" and ready is not None and not ready.ready:
            return "creating"
        return status

    def set_status(self, value: str) -> None:
        self.__dict__["_ecomlib_status"] = value

    _replace(Cluster, "status", lambda original: property(get_status, set_status))

    def build_create(original_create):
        def create_cluster(self):
            result = original_create(self)
            cluster = self.redshift_backend.clusters[self._get_param("ClusterIdentifier")]
            cluster.__dict__["_ecomlib_ready"] = aws_time.Pending("redshift_creating")
            _manage_cluster(cluster, self._get_bool_param("ManageMasterPassword", False),
                            self._get_param("DefaultIamRoleArn"))
            return result
        return create_cluster

    _replace(RedshiftResponse, "create_cluster", build_create)

    def build_modify(original_modify):
        def modify_cluster(self):
            result = original_modify(self)
            if self._get_bool_param("ManageMasterPassword", False):  # from now on Redshift keeps it
                cluster = self.redshift_backend.clusters[
                    self._get_param("NewClusterIdentifier") or self._get_param("ClusterIdentifier")]
                _manage_cluster(cluster, True, cluster.default_iam_role_arn)
            return result
        return modify_cluster

    _replace(RedshiftResponse, "modify_cluster", build_modify)


def _manage_cluster(cluster, manage_password: bool, default_role: str | None) -> None:
    """Give a new cluster its managed admin secret and default role (see above)."""
    import secrets as random_secrets

    from moto.secretsmanager.models import secretsmanager_backends

    cluster.default_iam_role_arn = default_role
    if not manage_password:
        return
    password = random_secrets.token_urlsafe(24)
    cluster.master_user_password = password
    backend = secretsmanager_backends[cluster.account_id][cluster.region]
    name = f"redshift!{cluster.cluster_identifier}-{cluster.master_username}"
    if backend.secrets.get(name) is not None:
        backend.delete_secret(name, recovery_window_in_days=None, force_delete_without_recovery=True)
    secret = backend.create_secret(
        name=name, secret_string=json.dumps({"username": cluster.master_username, "password": password}),
        secret_binary=None, description=f"Admin user password of Redshift cluster {cluster.cluster_identifier}",
        tags=[], kms_key_id=None, client_request_token=None, replica_regions=[],
        force_overwrite=False)
    cluster.master_password_secret_arn = json.loads(secret)["ARN"]


def _forget_managed_secret(cluster) -> None:
    from moto.secretsmanager.models import secretsmanager_backends

    if cluster.master_password_secret_arn:
        backend = secretsmanager_backends[cluster.account_id][cluster.region]
        try:
            backend.delete_secret(cluster.master_password_secret_arn, recovery_window_in_days=None,
                                  force_delete_without_recovery=True)
        except Exception:  # noqa: BLE001  (already gone)
            pass


def _patch_firehose_states(firehose) -> None:
    """A new delivery stream is ``CREATING`` for a while, then ``ACTIVE``.

    AWS: CreateDeliveryStream answers at once and the stream is ``CREATING``, then
    ``ACTIVE``; a Kinesis-sourced stream reads from LATEST from the moment it is ACTIVE, so
    records put before are never delivered. moto 5.2: ``ACTIVE`` at once. Here
    :class:`~ecomlib.local.firehose.Firehose` keeps when each becomes active
    (``firehose_creating`` of :mod:`aws_time`) and DescribeDeliveryStream says so.
    """
    from moto.firehose.models import FirehoseBackend

    def build_create(original_create):
        def create_delivery_stream(self, region, delivery_stream_name, *args, **kwargs):
            arn = original_create(self, region, delivery_stream_name, *args, **kwargs)
            firehose.created(self.delivery_streams[delivery_stream_name])
            return arn
        return create_delivery_stream

    def build_describe(original_describe):
        def describe_delivery_stream(self, delivery_stream_name: str):
            result = original_describe(self, delivery_stream_name)
            description = result["DeliveryStreamDescription"]
            if description.get("DeliveryStreamStatus") == "ACTIVE" and not firehose.is_active(
                    self.delivery_streams[delivery_stream_name]):
                description["DeliveryStreamStatus"] = "CREATING"
            return result
        return describe_delivery_stream

    _replace(FirehoseBackend, "create_delivery_stream", build_create)
    _replace(FirehoseBackend, "describe_delivery_stream", build_describe)


def _patch_duplicate_names() -> None:
    """A permission's statement id and a REST API resource's path part are unique.

    AWS: AddPermission with a ``StatementId`` the function's policy already has is refused
    with ResourceConflictException ("The statement id (...) provided already exists. Please
    provide a new statement id, or remove the existing statement."); CreateResource with a
    ``pathPart`` its parent already has is refused with ConflictException ("Another resource
    with the same parent already has this name: ..."). moto 5.2 adds a second statement and a
    second resource, so a re-run cell that should fail went on with a broken policy.
    """
    from moto.apigateway.exceptions import ConflictException as ApiConflict
    from moto.apigateway.models import APIGatewayBackend
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda.models import LambdaBackend

    class StatementExists(LambdaClientError):
        code = 409

        def __init__(self, sid: str) -> None:
            super().__init__("ResourceConflictException", f"The statement id ({sid}) provided already exists. "
                             "Please provide a new statement id, or remove the existing statement.")

    def build_add_permission(original):
        def add_permission(self, function_name, qualifier, raw):
            sid = json.loads(raw).get("StatementId")
            fn = self.get_function(function_name, qualifier)
            if sid and any(statement.get("Sid") == sid for statement in fn.policy.statements):
                raise StatementExists(sid)
            return original(self, function_name, qualifier, raw)
        return add_permission

    def build_create_resource(original):
        def create_resource(self, function_id, parent_resource_id, path_part):
            if path_part:
                api = self.get_rest_api(function_id)
                if any(r.parent_id == parent_resource_id and r.path_part == path_part
                       for r in api.resources.values()):
                    raise ApiConflict(f"Another resource with the same parent already has this name: {path_part}")
            return original(self, function_id, parent_resource_id, path_part)
        return create_resource

    _replace(LambdaBackend, "add_permission", build_add_permission)
    _replace(APIGatewayBackend, "create_resource", build_create_resource)


def _patch_iam_propagation(iam) -> None:
    """A new role, or a role's changed policies, take effect after IAM's propagation delay.

    AWS: IAM is eventually consistent ("changes ... take time to become visible", IAM user
    guide); CreateFunction with a role created moments ago fails with
    InvalidParameterValueException "The role defined for the function cannot be assumed by
    Lambda.", and a changed policy still allows (or denies) what the old one did for a few
    seconds. moto 5.2: every change is in effect at once. Here the IAM component keeps
    each role's policies with the time they take effect (``aws_time`` "iam_propagation").
    """
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.awslambda.responses import LambdaResponse
    from moto.iam.models import IAMBackend

    from ecomlib.local.iam_enforcement import role_documents

    def build_create_role(original):
        def create_role(self, role_name, *args, **kwargs):
            role = original(self, role_name, *args, **kwargs)
            iam.role_created(role_name)
            return role
        return create_role

    def build_change(original):
        def change(self, *args, **kwargs):
            names = inspect.signature(original).bind(self, *args, **kwargs).arguments
            role_name = names["role_name"]
            before = role_documents(self.account_id, role_name)
            result = original(self, *args, **kwargs)
            iam.policies_changed(role_name, before, role_documents(self.account_id, role_name))
            return result
        return change

    _replace(IAMBackend, "create_role", build_create_role)
    for name in ("put_role_policy", "delete_role_policy", "attach_role_policy", "detach_role_policy"):
        _replace(IAMBackend, name, build_change)

    def build_create_function(original):
        def create_function(self):
            role_name = str(self.json_body.get("Role", "")).split("/")[-1]
            if role_name and not iam.role_usable(role_name):
                raise InvalidParameterValueException("The role defined for the function cannot be assumed by Lambda.")
            return original(self)
        return create_function

    # The API call only: CloudFormation waits for its roles itself (as it does on AWS).
    _replace(LambdaResponse, "create_function", build_create_function)


def _patch_statement_owners(iam) -> None:
    """Remember who ran each Data API statement (the condition key
    ``redshift-data:statement-owner-iam-userid``).

    AWS: a policy may let a role follow only its own statements (DescribeStatement with
    ``StringEquals redshift-data:statement-owner-iam-userid: ${aws:userid}``). moto 5.2
    keeps no owner. Here the caller's ``aws:userid`` is kept per statement id; this wraps
    the Data API answers installed by :func:`_patch_redshift_data` (called before it).
    """
    from moto.redshiftdata.responses import RedshiftDataAPIServiceResponse as Response

    for name in ("execute_statement", "batch_execute_statement"):
        answer = Response.__dict__[name]

        def method(self, _answer=answer):
            status, headers, body = _answer(self)
            caller = iam.authenticator.caller() if iam.authenticator is not None else None
            if caller is not None and caller.session is not None and status == 200:
                iam.statement_owners[json.loads(body)["Id"]] = caller.session.user_id
            return status, headers, body
        method.__name__ = name
        setattr(Response, name, method)
