"""Every change to moto, made inside the embedded AWS process only, and nowhere else.

Each patch says what AWS really does and what moto does instead. Some only fix moto
(Kinesis at scale, DynamoDB Query, CloudFormation); others hand a call to a component
(``LambdaFunction.invoke`` -> :class:`~ecomlib.local.lambda_runtime.LambdaRuntime`): the
component holds the behaviour and its state, this module plugs it into moto. No other
module assigns to moto's classes.

:func:`apply` installs them all for one set of components; it may be called again (a new
set of components replaces the old one): a patched attribute always wraps moto's own,
kept on the class under ``_ecomlib_moto_<name>``.
"""

from __future__ import annotations

import inspect
import json
import threading
from itertools import count
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ecomlib.local.server import EmbeddedAWS


def apply(aws: "EmbeddedAWS") -> None:
    """Install every patch, the component-backed ones pointing at ``aws``'s components."""
    _patch_kinesis_shard()
    _patch_kinesis_lambda_mapping()
    _patch_dynamodb_query()
    _patch_redshift_iam_roles()
    _patch_cloudformation(aws.lambda_runtime)
    _patch_lambda_invoke(aws.lambda_runtime)
    _patch_lambda_strictness(aws.lambda_runtime)
    _patch_kinesis_strictness()
    _patch_iam_authorization(aws.iam)
    _patch_events(aws.scheduler)
    _patch_redshift_data(aws.redshift_data)


def _replace(owner: type, name: str, build: Callable[[Any], Any]) -> None:
    """Set ``owner.name`` to ``build(original)``, ``original`` being moto's own attribute (as
    found on the class: a function, classmethod or property; None if moto has none)."""
    key = f"_ecomlib_moto_{name}"
    if key not in owner.__dict__:
        try:
            original = inspect.getattr_static(owner, name)
        except AttributeError:
            original = None
        setattr(owner, key, original)
    setattr(owner, name, build(owner.__dict__[key]))


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
    """Make a table Query read one partition, not the whole table.

    AWS: a Query on the partition key reads that partition only, in milliseconds
    whatever the table's size. moto 5.2: every Query first sorts all the table's items
    (``Table.all_items``), so a GET on a 27,000-item table takes ~100 ms and grows with
    the table. A Query on the table itself (not on an index) only needs its partition,
    which moto keeps in ``Table.items[hash_key]``; queries on indexes are left as they are.
    """
    from moto.dynamodb.models.table import Table

    def build(original):
        signature = inspect.signature(original)
        return lambda self, *args, **kwargs: query(self, original, signature, *args, **kwargs)

    def query(self: Table, original, signature, *args, **kwargs):
        call = signature.bind(self, *args, **kwargs)
        hash_key = call.arguments.get("hash_key")
        if call.arguments.get("index_name") or hash_key is None or not self.range_key_attr:
            return original(self, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())
        self.all_items = lambda: partition  # the instance attribute hides the method ...
        try:
            return original(self, *args, **kwargs)
        finally:
            del self.all_items  # ... until this query is answered

    _replace(Table, "query", build)


def _patch_redshift_iam_roles() -> None:
    """Answer ModifyClusterIamRoles.

    AWS: adds or removes the IAM roles a cluster may assume (for COPY from S3 with
    ``IAM_ROLE '<arn>'``). moto 5.2 stores roles given at CreateCluster but does not
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
        return original_attribute(self, attribute_name)

    _replace(Cluster, "get_cfn_attribute", build_get_cfn_attribute)

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
    """Check the calls a function makes with its role's credentials, when switched on.

    AWS: every request is allowed only if the caller's policies allow the action on the
    resource. moto 5.2: checks nothing by default, and its opt-in checks apply to every
    caller and, outside S3, never match a statement scoped to a resource. Here
    :meth:`IamEnforcement.authorize` decides (see ``iam_enforcement``).
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
