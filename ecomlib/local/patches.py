"""Changes to moto itself, made inside the embedded AWS process only.

Each patch says what AWS really does and why moto needs help to behave like it at the
scale of this course. Nothing outside ``ecomlib.local`` patches moto.
"""

from __future__ import annotations

from itertools import count

_applied = False


def apply() -> None:
    """Apply every patch once (idempotent)."""
    global _applied
    if _applied:
        return
    _patch_kinesis_shard()
    _patch_kinesis_lambda_mapping()
    _patch_dynamodb_query()
    _patch_redshift_iam_roles()
    _patch_cloudformation()
    _patch_create_time_tags()
    _applied = True


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

    original_get_records = Shard.get_records

    def get_records(self: Shard, last_sequence_id: str, limit: int | None):
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

    Shard.get_max_sequence_number = get_max_sequence_number
    Shard.get_min_sequence_number = get_min_sequence_number
    Shard.get_records = get_records


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

    LambdaBackend.send_kinesis_message = send_kinesis_message


def _patch_dynamodb_query() -> None:
    """Make a table Query read one partition, not the whole table.

    AWS: a Query on the partition key reads that partition only, in milliseconds
    whatever the table's size. moto 5.2: every Query first sorts all the table's items
    (``Table.all_items``), so a GET on a 27,000-item table takes ~100 ms and grows with
    the table. A Query on the table itself (not on an index) only needs its partition,
    which moto keeps in ``Table.items[hash_key]``; queries on indexes are left as they are.
    """
    import inspect

    from moto.dynamodb.models.table import Table

    original = Table.query
    signature = inspect.signature(original)

    def query(self: Table, *args, **kwargs):
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
    Table.query = query


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

    RedshiftResponse.modify_cluster_iam_roles = modify_cluster_iam_roles


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
    import json

    from moto.apigateway.models import RestAPI, apigateway_backends
    from moto.iam.models import Role
    from moto.core.common_models import CloudFormationModel
    from moto.firehose.models import firehose_backends
    from moto.redshift.models import Cluster, redshift_backends

    original = Cluster.create_from_cloudformation_json.__func__

    def create_cluster(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
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

    Cluster.create_from_cloudformation_json = classmethod(create_cluster)
    Cluster.delete_from_cloudformation_json = classmethod(delete_cluster)
    Cluster.physical_resource_id = property(lambda self: self.cluster_identifier)
    original_attribute = Cluster.get_cfn_attribute

    def get_cfn_attribute(self, attribute_name):  # moto returns the whole Endpoint map
        endpoint = self.endpoint if isinstance(self.endpoint, dict) else {"Address": self.endpoint, "Port": self.port}
        if attribute_name == "Endpoint.Address":
            return endpoint["Address"]
        if attribute_name == "Endpoint.Port":
            return str(endpoint.get("Port", self.port))
        return original_attribute(self, attribute_name)

    Cluster.get_cfn_attribute = get_cfn_attribute

    def delete_rest_api(cls, resource_name, cloudformation_json, account_id, region_name):
        backend = apigateway_backends[account_id][region_name]
        if resource_name in backend.apis:
            backend.delete_rest_api(resource_name)

    RestAPI.delete_from_cloudformation_json = classmethod(delete_rest_api)

    original_put_policy = Role.put_policy

    def put_policy(self, policy_name, policy_json):  # a stack's inline policy, kept as JSON text
        return original_put_policy(self, policy_name, policy_json if isinstance(policy_json, str)
                                   else json.dumps(policy_json))

    Role.put_policy = put_policy

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

    original_bucket_put = S3Response._bucket_response_put

    def bucket_response_put(self, request, bucket_name, querystring):
        answer = original_bucket_put(self, request, bucket_name, querystring)
        if not querystring and self.body:
            configuration = xmltodict.parse(self.body).get("CreateBucketConfiguration") or {}
            tags = ((configuration.get("Tags") or {}).get("Tag")) or []
            tags = [tags] if isinstance(tags, dict) else tags
            if tags:
                self.backend.put_bucket_tagging(bucket_name, {t["Key"]: t["Value"] for t in tags})
        return answer

    S3Response._bucket_response_put = bucket_response_put

    original_create_stream = KinesisResponse.create_stream

    def create_stream(self):
        answer = original_create_stream(self)
        if self._get_param("Tags"):
            self.kinesis_backend.add_tags_to_stream(None, self._get_param("StreamName"), self._get_param("Tags"))
        return answer

    KinesisResponse.create_stream = create_stream

    original_create = parsing.parse_and_create_resource

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
