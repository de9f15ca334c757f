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
    _patch_cloudformation()
    _patch_lambda_invoke(aws.lambda_runtime)
    _patch_iam_authorization(aws.iam)
    _patch_events(aws.scheduler)
    _patch_redshift_data(aws.redshift_data)
    _patch_iam_propagation(aws.iam)
    _patch_statement_owners(aws.iam)


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
    """
    from moto.kinesis.models import Shard

    def get_max_sequence_number(self: Shard) -> int:
        return next(reversed(self.records)) if self.records else 0

    def get_min_sequence_number(self: Shard) -> int:
        return next(iter(self.records)) if self.records else 0

    def build_get_records(original_get_records):
        return lambda self, last_sequence_id, limit: get_records(self, last_sequence_id, limit, original_get_records)

    def get_records(self: Shard, last_sequence_id: str, limit: int | None, original_get_records):
        last = int(last_sequence_id)
        records = self.records
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

    _replace(Shard, "get_max_sequence_number", lambda original: get_max_sequence_number)
    _replace(Shard, "get_min_sequence_number", lambda original: get_min_sequence_number)
    _replace(Shard, "get_records", build_get_records)


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


def _patch_cloudformation() -> None:
    """Let CloudFormation create the course's Redshift cluster and Firehose delivery stream.

    AWS: ``AWS::Redshift::Cluster`` is named by ``ClusterIdentifier`` and may assume the
    ``IamRoles`` it lists; ``AWS::KinesisFirehose::DeliveryStream`` creates a delivery
    stream. moto 5.2: the cluster gets a generated name and no roles (its physical id is
    empty, so deleting the stack leaves it behind) and ``Endpoint.Address`` is the whole
    endpoint map; Firehose resources are skipped without an error. Deleting a stack
    leaves its REST API behind, and a role's inline policies are kept as Python text
    (``{'Version': ...}``), not JSON.
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
            return runtime.moto_invoke(self, body, request_headers, response_headers)
        return invoke

    _replace(LambdaFunction, "invoke", build)


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
