"""Kinesis Data Firehose with a Kinesis stream as source and Redshift as destination.

AWS: a delivery stream whose source is a Kinesis stream reads every shard by itself,
starting with the records that arrive after it was created (it reads from LATEST: data
already in the stream is not delivered), buffers the records until ``SizeInMBs`` or ``IntervalInSeconds`` is reached (the
buffering hints), writes the buffer as one object to the intermediate S3 bucket under
``<prefix>YYYY/MM/DD/HH/<name>-<version>-YYYY-MM-DD-HH-MM-SS-<id>``, writes a manifest
naming that object, and runs ``COPY <table> (<columns>) FROM '<manifest>' ... MANIFEST
<CopyOptions>`` on the cluster. A COPY that keeps failing is given up after the retry
duration and its manifest is written under ``errors/`` for you to load later. Delivery
is at least once: a retried delivery can load rows twice.

moto 5.2: accepts such a delivery stream and reports it ACTIVE, but never reads the
source stream, and drops data bound for Redshift.

Before it loads anything, Firehose connects to the cluster's public endpoint from its
published address block for the region: a cluster that is not publicly accessible, not
available, or whose security groups do not admit that block on the cluster's port fails
with ``Redshift.ConnectionFailed``; a user name and password (from the configuration or
from the Secrets Manager secret of ``SecretsManagerConfiguration``) that are not the
cluster's fail with ``Redshift.AuthenticationFailed``. Each is retried, then the manifest
goes to ``errors/`` with the error code and message (AWS: also CloudWatch Logs).
A new delivery stream is ``CREATING`` for a while (``firehose_creating`` in ``aws_time``)
and reads the stream from the moment it is ``ACTIVE``.

Here: a background thread does what Firehose does, with the same object names and the
same COPY, run on the local warehouse (``ecomlib.local.redshift_data``). Firehose signs
its COPY with its role's temporary credentials (the role need not be attached to the
cluster); so does this one. ``drain()`` reads
everything pending and delivers every buffer at once, ignoring the hints, so notebooks
and tests are deterministic. Not emulated: compression other than GZIP, record format
conversion, data transformation with Lambda, dynamic partitioning, S3 backup.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

from moto.core import DEFAULT_ACCOUNT_ID

from ecomlib.local.component import Route, Worker, WorkerComponent
from ecomlib.local.redshift_data import RedshiftData

log = logging.getLogger("ecomlib.firehose")

POLL_INTERVAL = 0.5
MAX_COPY_ATTEMPTS = 3  # then the manifest goes to errors/ (AWS: retry for DurationInSeconds)


@dataclass
class _Buffer:
    records: list[bytes] = field(default_factory=list)
    size: int = 0
    since: float = 0.0  # when the oldest buffered record was read
    # where each shard's buffered records end: the checkpoint once they are delivered
    ends: dict[str, int] = field(default_factory=dict)


class Firehose(WorkerComponent):
    """Every delivery stream with a Kinesis source: checkpoints, buffers, COPYs to run."""

    name = "firehose"

    def __init__(self, redshift_data: RedshiftData) -> None:
        self.redshift_data = redshift_data
        self.checkpoints: dict[tuple[str, str], int] = {}  # (delivery stream key, shard id) -> last seq done
        self.buffers: dict[str, _Buffer] = {}  # delivery stream key -> what is waiting
        self.failures: dict[str, int] = {}  # manifest key -> COPY attempts that failed
        self.pending_copies: dict[str, list[str]] = {}  # delivery stream key -> manifests still to COPY
        self.active_at: dict[str, float] = {}  # delivery stream key -> when it is ACTIVE (epoch seconds)
        self.stats = {"firehose_records": 0, "firehose_objects": 0, "copies": 0, "copy_errors": 0}
        self._worker = Worker("firehose", POLL_INTERVAL, lambda: self._round(flush=False))

    # ---- lifecycle --------------------------------------------------------------------

    def reset(self) -> None:
        with self._worker.lock:
            for store in (self.checkpoints, self.buffers, self.failures, self.pending_copies, self.active_at):
                store.clear()
            for key in self.stats:
                self.stats[key] = 0

    def status(self) -> dict:
        return {"firehose": dict(self.stats)}

    def routes(self) -> dict[str, Route]:
        return {"faults/crash": self._fault_crash, "faults/stop": self._fault_stop,
                "faults/start": self._fault_start}

    def _fault_crash(self, body: dict) -> dict | None:
        """``faults/crash`` with ``{"firehose": true}``: see :meth:`crash`."""
        if not body.get("firehose"):
            return None
        return {"firehose_records_lost_from_buffers": self.crash()}

    def _fault_stop(self, body: dict) -> dict:  # noqa: ARG002
        """Stop reading the streams; what is buffered is lost."""
        self.stop()
        return {"firehose": "stopped", "firehose_records_lost_from_buffers": self.crash()}

    def _fault_start(self, body: dict) -> dict:  # noqa: ARG002
        self._worker.start()
        return {"firehose": "started"}

    def crash(self) -> int:
        """Lose what Firehose holds in memory, as a failed delivery host would: the records
        buffered but not yet delivered. What is durable on AWS stays: the checkpoints (which
        move only when a buffer has been written) and the COPYs still to run. The next round
        reads the lost records again from the checkpoints. Returns how many were dropped."""
        with self._worker.lock:  # between two rounds, never in the middle of a delivery
            dropped = sum(len(buffer.records) for buffer in self.buffers.values())
            self.buffers.clear()
        log.warning("firehose crashed: %d buffered records dropped", dropped)
        return dropped

    def drain(self, timeout: float = 300) -> dict:  # noqa: ARG002
        """Read every pending record and deliver every buffer now; returns what was done."""
        before = dict(self.stats)
        with self._worker.lock:
            self._round(flush=True)
        return {key: self.stats[key] - before[key] for key in self.stats}

    # ---- states -----------------------------------------------------------------------

    def created(self, delivery) -> None:
        """A delivery stream was just created: it becomes ACTIVE after ``firehose_creating``."""
        from ecomlib.local import aws_time

        self.active_at[_key(delivery)] = time.time() + aws_time.seconds("firehose_creating")

    def is_active(self, delivery) -> bool:
        return time.time() >= self.active_at.get(_key(delivery), 0.0)

    # ---- one round --------------------------------------------------------------------

    def _round(self, flush: bool) -> None:
        from ecomlib.local.component import MOTO_LOCK

        with MOTO_LOCK:
            streams = _delivery_streams()
        for delivery in streams:
            if not self.is_active(delivery):
                continue  # CREATING: it reads nothing yet
            self._read_source(delivery)
            buffer = self.buffers.get(_key(delivery))
            size_mb, interval = _hints(delivery)
            due = buffer and buffer.records and (
                flush or buffer.size >= size_mb * 1024 * 1024 or time.time() - buffer.since >= interval)
            if due:
                self._deliver(delivery, buffer)
            self._copy_pending(delivery)

    def _read_source(self, delivery) -> None:
        """Append the source stream's new records to the delivery stream's buffer."""
        from moto.kinesis.models import kinesis_backends

        from ecomlib.local.component import MOTO_LOCK

        arn = delivery.source["KinesisStreamARN"]
        region, name = arn.split(":")[3], arn.split("/")[-1]
        buffer = self.buffers.setdefault(_key(delivery), _Buffer())
        with MOTO_LOCK:
            stream = kinesis_backends[DEFAULT_ACCOUNT_ID][region].streams.get(name)
            if stream is None:
                return
            for shard in list(stream.shards.values()):
                key = (_key(delivery), shard.shard_id)
                if key not in self.checkpoints:  # a new delivery stream reads from LATEST once ACTIVE
                    active = self.active_at.get(_key(delivery)) or delivery.create_timestamp.replace(
                        tzinfo=timezone.utc).timestamp()
                    self.checkpoints[key] = shard.get_sequence_number_at(active)
                start = buffer.ends.get(shard.shard_id, self.checkpoints[key])
                while True:
                    records, last, _ = shard.get_records(str(start), 10_000)
                    if not records:
                        break
                    if not buffer.records:
                        buffer.since = time.time()
                    for record in records:
                        data = _decode(record.data)
                        buffer.records.append(data)
                        buffer.size += len(data)
                    start = int(last)
                    buffer.ends[shard.shard_id] = start

    def _deliver(self, delivery, buffer: _Buffer) -> None:
        """Write the buffer as one S3 object (and a manifest for Redshift); move checkpoints."""
        from moto.s3.models import s3_backends

        from ecomlib.local.component import MOTO_LOCK

        kind, _ = _destination(delivery)
        s3 = _s3_config(delivery)
        bucket = s3["BucketARN"].split(":")[-1]
        prefix = s3.get("Prefix", "")
        now = datetime.now(timezone.utc)
        name = f"{delivery.delivery_stream_name}-{delivery.version_id}-{now:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}"
        key = f"{prefix}{now:%Y/%m/%d/%H}/{name}"
        body = b"".join(buffer.records)
        if s3.get("CompressionFormat") == "GZIP":
            body, key = gzip.compress(body), key + ".gz"
        with MOTO_LOCK:
            backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
            backend.put_object(bucket, key, body)
            if kind == "Redshift":
                manifest_key = f"{prefix}manifests/{now:%Y/%m/%d/%H}/{name}"
                manifest = {"entries": [{"url": f"s3://{bucket}/{key}", "mandatory": True}]}
                backend.put_object(bucket, manifest_key, json.dumps(manifest).encode())
                self.pending_copies.setdefault(_key(delivery), []).append(manifest_key)
        self.stats["firehose_records"] += len(buffer.records)
        self.stats["firehose_objects"] += 1
        for shard_id, end in buffer.ends.items():
            self.checkpoints[(_key(delivery), shard_id)] = end
        self.buffers[_key(delivery)] = _Buffer()

    def _copy_pending(self, delivery) -> None:
        """Run the destination's COPY for each delivered manifest, as Firehose does."""
        kind, config = _destination(delivery)
        if kind != "Redshift":
            return
        pending = self.pending_copies.get(_key(delivery), [])
        s3 = _s3_config(delivery)
        bucket = s3["BucketARN"].split(":")[-1]
        cluster, database = _cluster_and_database(config["ClusterJDBCURL"])
        copy = config["CopyCommand"]
        columns = f" ({copy['DataTableColumns']})" if copy.get("DataTableColumns") else ""
        failures = self.failures
        while pending:
            manifest_key = pending[0]
            sql = (f"COPY {copy['DataTableName']}{columns} FROM 's3://{bucket}/{manifest_key}' "
                   f"CREDENTIALS '{_temporary_credentials()}' MANIFEST {copy.get('CopyOptions', '')}")
            try:
                refused = _connection_refused(delivery, config, cluster)
                if refused:
                    raise DeliveryError(*refused)
                self.redshift_data.execute(cluster, database, sql)
            except Exception as error:  # noqa: BLE001  (as Firehose: retry, then report)
                failures[manifest_key] = failures.get(manifest_key, 0) + 1
                log.warning("firehose COPY of %s failed (%d): %s", manifest_key, failures[manifest_key], error)
                if failures[manifest_key] < MAX_COPY_ATTEMPTS:
                    return
                self.stats["copy_errors"] += 1
                code = error.code if isinstance(error, DeliveryError) else _copy_error_code(str(error))
                _give_up(bucket, s3.get("Prefix", ""), manifest_key, code, str(error))
            else:
                self.stats["copies"] += 1
            pending.pop(0)


def _delivery_streams() -> list:
    from moto.firehose.models import firehose_backends

    found = []
    for region in list(firehose_backends[DEFAULT_ACCOUNT_ID].keys()):
        backend = firehose_backends[DEFAULT_ACCOUNT_ID][region]
        found += [d for d in list(backend.delivery_streams.values())
                  if d.delivery_stream_type == "KinesisStreamAsSource" and d.source]
    return found


def _key(delivery) -> str:
    """A delivery stream's identity: a deleted and re-created one starts afresh."""
    return f"{delivery.delivery_stream_arn}@{delivery.create_timestamp.isoformat()}"


def _hints(delivery) -> tuple[float, float]:
    hints = _s3_config(delivery).get("BufferingHints") or {}
    return float(hints.get("SizeInMBs", 5)), float(hints.get("IntervalInSeconds", 300))


def _destination(delivery) -> tuple[str, dict]:
    destination = delivery.destinations[0]
    for kind in ("Redshift", "ExtendedS3", "S3"):
        if kind in destination:
            return kind, destination[kind]
    return "", {}


def _s3_config(delivery) -> dict:
    kind, config = _destination(delivery)
    if kind == "Redshift":
        return config.get("S3DestinationDescription") or config.get("S3Configuration") or {}
    return config


def _decode(data) -> bytes:
    return base64.b64decode(data) if isinstance(data, str) else bytes(data)


def _give_up(bucket: str, prefix: str, manifest_key: str, code: str, error: str) -> None:
    """Put the manifest under errors/ with the reason, as Firehose does for failed COPYs."""
    from moto.s3.models import s3_backends

    from ecomlib.local.component import MOTO_LOCK

    target = f"{prefix}errors/{manifest_key[len(prefix):]}"
    with MOTO_LOCK:
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        manifest = json.loads(backend.get_object(bucket, manifest_key).value)
        manifest["errorCode"], manifest["error"] = code, error
        backend.put_object(bucket, target, json.dumps(manifest).encode())


def _cluster_and_database(jdbc_url: str) -> tuple[str, str]:
    """jdbc:redshift://<cluster>.<id>.<region>.redshift.amazonaws.com:5439/<db> -> (cluster, db)."""
    parts = urlsplit(jdbc_url.removeprefix("jdbc:"))
    return (parts.hostname or "").split(".")[0], parts.path.strip("/") or "dev"


class DeliveryError(Exception):
    """A delivery that failed before its COPY ran, with Firehose's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# Firehose's texts for these delivery errors (developer guide, "Data delivery errors").
CONNECTION_FAILED = ("Redshift.ConnectionFailed",
                     "The connection to the specified Amazon Redshift cluster failed. Ensure that security "
                     "settings allow Firehose connections, that the cluster or database specified in the Amazon "
                     "Redshift destination configuration or JDBC URL is correct, and that the cluster is available.")
AUTHENTICATION_FAILED = ("Redshift.AuthenticationFailed",
                         "The provided user name and password failed authentication. Provide a valid user name "
                         "and password.")


def _copy_error_code(message: str) -> str:
    """Firehose's error code for a COPY that Redshift refused (the common two)."""
    if "relation" in message and "does not exist" in message:
        return "Redshift.TableNotFound"
    return "Redshift.DataLoadFailed"


def _connection_refused(delivery, config: dict, cluster_id: str) -> tuple[str, str] | None:
    """Why Firehose could not sign in to the cluster, or None: the network path (public,
    available, a security group admitting Firehose's block on the port), then the user."""
    import ipaddress

    from moto.redshift.models import redshift_backends

    from ecomlib.local.component import MOTO_LOCK
    from ecomlib.network import FIREHOSE_CIDRS

    region = delivery.delivery_stream_arn.split(":")[3]
    with MOTO_LOCK:
        cluster = redshift_backends[DEFAULT_ACCOUNT_ID][region].clusters.get(cluster_id)
        if cluster is None or cluster.status != "available" or not cluster.publicly_accessible:
            return CONNECTION_FAILED
        source = ipaddress.ip_network(FIREHOSE_CIDRS.get(region, "0.0.0.0/32"))
        port = int(cluster.port)
        admitted = False
        for group_id in cluster.vpc_security_group_ids or []:
            group = _security_group(region, group_id)
            for rule in getattr(group, "ingress_rules", []):
                if rule.ip_protocol not in ("tcp", "-1", "6"):
                    continue
                if rule.ip_protocol != "-1" and not (int(rule.from_port) <= port <= int(rule.to_port)):
                    continue
                cidr = (rule.ip_range or {}).get("CidrIp")
                if cidr and source.subnet_of(ipaddress.ip_network(cidr, strict=False)):
                    admitted = True
        if not admitted:
            return CONNECTION_FAILED
        username, password = _sign_in(config, region)
        if username != cluster.master_username or password != cluster.master_user_password:
            return AUTHENTICATION_FAILED
    return None


def _security_group(region: str, group_id: str):
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[DEFAULT_ACCOUNT_ID][region]
    for groups in backend.groups.values():
        if group_id in groups:
            return groups[group_id]
    return None


def _sign_in(config: dict, region: str) -> tuple[str | None, str | None]:
    """The user name and password Firehose signs in with: the secret's, when enabled."""
    from moto.secretsmanager.models import secretsmanager_backends

    secret = config.get("SecretsManagerConfiguration") or {}
    if secret.get("Enabled") and secret.get("SecretARN"):
        try:
            value = secretsmanager_backends[DEFAULT_ACCOUNT_ID][region].get_secret_value(
                secret["SecretARN"], version_id=None, version_stage=None)
            body = json.loads(value.get("SecretString") or "{}")
        except Exception:  # noqa: BLE001  (a missing or malformed secret: the sign-in fails)
            return None, None
        return body.get("username"), body.get("password")
    return config.get("Username"), config.get("Password")


def _temporary_credentials() -> str:
    """A COPY credentials clause in the form Firehose uses: its role's temporary keys."""
    return (f"aws_access_key_id=ASIA{uuid.uuid4().hex[:16].upper()};"
            f"aws_secret_access_key={uuid.uuid4().hex}{uuid.uuid4().hex[:8]};token={uuid.uuid4().hex}")
