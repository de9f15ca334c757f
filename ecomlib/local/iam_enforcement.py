"""IAM, enforced: every call made with a role's credentials is checked against that role.

AWS: every request is signed by an identity and allowed only if that identity's policies
allow the action on the resource the request names, under the statements' conditions
(an explicit Deny wins, else an Allow is needed). A Lambda function calls AWS with
temporary credentials of its execution role, so a permission missing from the role fails
its call with AccessDenied(Exception) naming the action and the resource. IAM is eventually
consistent: a new role or a changed policy takes effect after a few seconds (a function
created with a role that is too new: "The role defined for the function cannot be assumed
by Lambda.").

moto 5.2: checks nothing by default. Its opt-in checks (``INITIAL_NO_AUTH_ACTION_COUNT``)
apply to every caller; outside S3 it compares only the action (moto hands no resource to
the check, so a statement scoped to one stream or table never matches), and a statement
whose condition is not met counts as a Deny.

Here, on by default (``POST /_ecomlib/iam {"enforce": false}`` or
``security.enforce_iam(False)`` switches it off where a test needs leniency): a request
signed with an STS session of a role (``Authenticator.caller()``) is checked against the
role's inline and attached policies as they were :func:`aws_time.seconds`
("iam_propagation") ago, by action, by every resource the request names
(:func:`resources`: the ARN formats of AWS's Service Authorization Reference for the
actions the course uses) and by the condition keys the course's identity policies use
(``s3:prefix``, ``redshift-data:statement-owner-iam-userid`` with ``${aws:userid}``; the
``aws:SourceArn`` of a function's resource policy is checked by the scheduler when
EventBridge invokes it).
The account owner's credentials (the learner's own) may do everything. The gap-fillers
that read moto's state in-process (stream pollers, Firehose, the warehouse's COPY) are
not checked here.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
from urllib.parse import parse_qs, unquote, urlparse

from moto.core import DEFAULT_ACCOUNT_ID

from ecomlib.local import aws_time
from ecomlib.local.component import Component, Route

log = logging.getLogger("ecomlib.iam")

CREDENTIALS_SECONDS = 43_200  # how long a function's role credentials last (STS's maximum)


class IamEnforcement(Component):
    """The check of role-signed requests (moto calls :meth:`authorize` for every request:
    see ``patches``), and when each role and policy change takes effect."""

    name = "iam"

    def __init__(self, authenticator=None) -> None:
        self.authenticator = authenticator  # who signed the request being answered (``auth``)
        self.enforced = True
        self._lock = threading.Lock()
        # role name -> (documents before the pending changes, [(monotonic time a change takes
        # effect, documents after it)], oldest first)
        self._versions: dict[str, tuple[list[dict], list[tuple[float, list[dict]]]]] = {}
        self._created: dict[str, float] = {}  # role name -> when it becomes usable
        self.statement_owners: dict[str, str] = {}  # Data API statement id -> caller's aws:userid

    def reset(self) -> None:
        with self._lock:
            self._versions.clear()
            self._created.clear()
            self.statement_owners.clear()
        self.enforce(True)

    def status(self) -> dict:
        return {"iam": {"enforced": self.enforced}}

    def routes(self) -> dict[str, Route]:
        return {"iam": self._route}

    def _route(self, body: dict) -> dict:
        """``POST /_ecomlib/iam`` ``{"enforce": true|false}``: switch; answers the status."""
        if "enforce" in body:
            self.enforce(bool(body["enforce"]))
        return self.status()

    def enforce(self, on: bool) -> None:
        """Switch the checks of role-signed requests on or off."""
        with self._lock:
            self.enforced = on
        log.info("IAM enforcement %s", "on" if on else "off")

    # ---- propagation ---------------------------------------------------------------------

    def role_created(self, role_name: str) -> None:
        with self._lock:
            self._created[role_name] = aws_time.now() + aws_time.seconds("iam_propagation")
            self._versions[role_name] = ([], [])

    def policies_changed(self, role_name: str, before: list[dict], after: list[dict]) -> None:
        """The role's policies went from ``before`` to ``after``: in effect after the delay."""
        with self._lock:
            base, versions = self._versions.setdefault(role_name, (before, []))
            versions.append((aws_time.now() + aws_time.seconds("iam_propagation"), after))

    def role_usable(self, role_name: str) -> bool:
        """Has the role propagated (may a service assume it yet)?"""
        with self._lock:
            return self._created.get(role_name, 0.0) <= aws_time.now()

    def effective_policies(self, role_name: str, current: list[dict]) -> list[dict]:
        """The role's policies as IAM sees them now: the newest change whose delay has
        passed (``current`` for a role whose changes are all older)."""
        with self._lock:
            entry = self._versions.get(role_name)
            if entry is None:
                return current
            base, versions = entry
            now = aws_time.now()
            ready = [docs for when, docs in versions if when <= now]
            if len(ready) == len(versions) and self._created.get(role_name, 0.0) <= now:
                self._versions.pop(role_name, None)
                return current
        return ready[-1] if ready else base

    # ---- the check -----------------------------------------------------------------------

    def authorize(self, response, iam_request_cls, resource: str = "*") -> None:
        """Check one request (moto's ``BaseResponse`` ``response``) made with a role's
        credentials; raises AWS's AccessDenied error when the role does not allow it."""
        from moto.iam.access_control import IAMRequest

        if not self.enforced or self.authenticator is None:
            return
        caller = self.authenticator.caller()
        if caller is None or caller.is_owner:
            return
        session = caller.session
        account = caller.role_arn.split(":")[4]
        region = getattr(response, "region", None) or "us-east-1"
        service = _signing_name(response.headers)
        operation = response._get_action()  # noqa: SLF001
        operation = operation[0] if isinstance(operation, list) else operation
        action = f"{service}:{operation}"
        if action == "sts:GetCallerIdentity":  # always allowed, even under an explicit Deny
            return
        s3 = iam_request_cls is not IAMRequest
        if s3:
            checks = [(_S3_ACTIONS.get(operation, action), name) for name in s3_resources(operation, response, resource)]
            if operation == "CopyObject":  # reading the source, too
                source = unquote(response.headers.get("x-amz-copy-source", "")).lstrip("/").split("?")[0]
                checks.append(("s3:GetObject", f"arn:aws:s3:::{source}"))
        else:
            checks = [(action, name) for name in resources(service, operation, response, region, account)]
        context = self.context(caller, service, operation, response)
        role = caller.role_arn.split("/")[-1]
        documents = self.effective_policies(role, role_documents(account, role))
        for action, name in checks:
            decision = evaluate(documents, action, name, context)
            if decision != "allow":
                log.info("denied %s on %s to %s", action, name, session.arn)
                raise _denied(response, s3, session.arn, action, name, decision)

    def context(self, caller, service: str, operation: str, response) -> dict[str, list[str]]:
        """The request's condition keys: global ones and the ones the course's policies use."""
        session = caller.session
        context = {"aws:userid": [session.user_id], "aws:PrincipalArn": [caller.role_arn],
                   "aws:username": [session.session_name]}
        if service == "s3":
            query = parse_qs(urlparse(response.uri).query)
            if "prefix" in query:
                context["s3:prefix"] = query["prefix"]
            elif operation in ("ListObjects", "ListObjectsV2"):
                context["s3:prefix"] = [""]
        if service == "redshift-data":
            statement = _json_body(response).get("Id", "")
            owner = self.statement_owners.get(statement.split(":")[0])
            if owner:
                context["redshift-data:statement-owner-iam-userid"] = [owner]
        return context


def _signing_name(headers) -> str:
    match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", headers.get("Authorization", "") or "")
    return match.group(1) if match else "s3"


def _json_body(response) -> dict:
    body = getattr(response, "body", None)
    if isinstance(body, dict):  # DynamoDB's responses hold the parsed request
        return body
    try:
        parsed = json.loads(getattr(response, "raw_body", None) or body or "{}")
        return parsed if isinstance(parsed, dict) else {}
    except (TypeError, ValueError):
        return {}


def role_documents(account: str, role_name: str) -> list[dict]:
    """The role's inline and attached (default version) policy documents, as moto holds them."""
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    try:
        role = backend.get_role(role_name)
    except Exception:  # noqa: BLE001  (a deleted role allows nothing)
        return []
    documents = []
    for text in role.policies.values():
        documents.append(json.loads(text) if isinstance(text, str) else text)
    for policy in role.managed_policies.values():
        version = next(v for v in policy.versions if v.is_default)
        documents.append(json.loads(version.document) if isinstance(version.document, str) else version.document)
    return documents


# ---- resources -----------------------------------------------------------------------------

# S3 operations whose IAM action has another name (Service Authorization Reference).
_S3_ACTIONS = {"ListObjects": "s3:ListBucket", "ListObjectsV2": "s3:ListBucket", "HeadObject": "s3:GetObject",
               "HeadBucket": "s3:ListBucket", "ListBuckets": "s3:ListAllMyBuckets",
               "DeleteObjects": "s3:DeleteObject", "CopyObject": "s3:PutObject",
               "ListObjectVersions": "s3:ListBucketVersions", "CreateMultipartUpload": "s3:PutObject",
               "UploadPart": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject"}


def _multi_delete(operation: str, response) -> bool:
    """A DeleteObjects request (moto names it DeleteObject, on the bucket)."""
    return operation in ("DeleteObject", "DeleteObjects") and response.method == "POST" and \
        "delete" in parse_qs(urlparse(response.uri).query, keep_blank_values=True)


def s3_resources(operation: str, response, resource: str) -> list[str]:
    """The objects of a multi-object delete (each needs s3:DeleteObject), else moto's resource."""
    if not _multi_delete(operation, response):
        return [resource]
    body = getattr(response, "raw_body", None) or b""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    keys = [html.unescape(key) for key in re.findall(r"<Key>(.*?)</Key>", text, re.DOTALL)]
    return [f"{resource}/{key}" for key in keys] or [resource]


def resources(service: str, operation: str, response, region: str, account: str) -> list[str]:
    """The ARNs a request acts on, each of which the caller must be allowed (ARN formats
    from AWS's Service Authorization Reference); ``["*"]`` for actions on no resource."""
    body = _json_body(response)
    param = _param(response, body)
    arn = f"{region}:{account}"
    if service == "kinesis":
        stream = param("StreamARN") or param("StreamName")
        if stream:
            return [stream if stream.startswith("arn:") else f"arn:aws:kinesis:{arn}:stream/{stream}"]
        consumer = param("ConsumerARN")
        return [consumer] if consumer else ["*"]
    if service == "dynamodb":
        if operation in ("BatchWriteItem", "BatchGetItem"):
            tables = list((body.get("RequestItems") or {}).keys())
        else:
            tables = [param("TableName")] if param("TableName") else []
        found = [t if t.startswith("arn:") else f"arn:aws:dynamodb:{arn}:table/{t}" for t in tables]
        if param("IndexName") and found:
            found = [f"{found[0]}/index/{param('IndexName')}"]
        return found or ["*"]
    if service == "redshift-data":
        if param("ClusterIdentifier"):
            return [f"arn:aws:redshift:{arn}:cluster:{param('ClusterIdentifier')}"]
        if param("WorkgroupName"):
            return [f"arn:aws:redshift-serverless:{arn}:workgroup/{param('WorkgroupName')}"]
        return ["*"]
    if service == "sqs":
        url = param("QueueUrl")
        name = param("QueueName") or (url.rstrip("/").rsplit("/", 1)[-1] if url else "")
        return [f"arn:aws:sqs:{arn}:{name}"] if name else ["*"]
    if service == "lambda":
        match = re.search(r"/functions/([^/]+)", unquote(urlparse(response.uri).path))
        if match:
            name = match.group(1)
            return [name if name.startswith("arn:") else f"arn:aws:lambda:{arn}:function:{name}"]
        return ["*"]
    if service == "firehose":
        name = param("DeliveryStreamName")
        return [f"arn:aws:firehose:{arn}:deliverystream/{name}"] if name else ["*"]
    if service == "logs":
        group = param("logGroupName")
        if not group:
            return ["*"]
        if param("logStreamName"):
            return [f"arn:aws:logs:{arn}:log-group:{group}:log-stream:{param('logStreamName')}"]
        return [f"arn:aws:logs:{arn}:log-group:{group}:*"]
    if service == "events":
        if operation in ("PutEvents",):
            return [f"arn:aws:events:{arn}:event-bus/default"]
        name = param("Name") or param("Rule")
        return [f"arn:aws:events:{arn}:rule/{name}"] if name else ["*"]
    if service == "sts":
        return [param("RoleArn")] if param("RoleArn") else ["*"]
    if service == "iam":
        if param("RoleName"):
            return [f"arn:aws:iam::{account}:role/{param('RoleName')}"]
        return [param("PolicyArn")] if param("PolicyArn") else ["*"]
    return ["*"]


def _param(response, body: dict):
    def get(name: str) -> str:
        if name in body:
            return str(body[name])
        try:
            value = response._get_param(name)  # noqa: SLF001  (query protocol, form fields)
        except Exception:  # noqa: BLE001
            value = None
        return str(value) if value else ""
    return get


# ---- the evaluation ------------------------------------------------------------------------


def evaluate(documents: list[dict], action: str, resource: str, context: dict[str, list[str]]) -> str:
    """"allow", "deny" (an explicit Deny) or "implicit" (no statement allows): AWS's
    evaluation of identity-based policies for one action on one resource."""
    allowed = False
    for document in documents:
        statements = document.get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            if not _applies(statement, action, resource, context):
                continue
            if statement.get("Effect") == "Deny":
                return "deny"
            allowed = True
    return "allow" if allowed else "implicit"


def _listed(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one character."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _substitute(pattern: str, context: dict[str, list[str]]) -> str:
    def value(match: re.Match) -> str:
        found = context.get(match.group(1))
        return found[0] if found else match.group(0)
    return re.sub(r"\$\{([^}]+)\}", value, pattern)


def _applies(statement: dict, action: str, resource: str, context: dict[str, list[str]]) -> bool:
    if "NotAction" in statement:
        if any(_like(a, action, True) for a in _listed(statement["NotAction"])):
            return False
    elif not any(_like(a, action, True) for a in _listed(statement.get("Action"))):
        return False
    if "NotResource" in statement:
        if any(_like(_substitute(r, context), resource) for r in _listed(statement["NotResource"])):
            return False
    elif not any(r == "*" or _like(_substitute(r, context), resource) for r in _listed(statement.get("Resource"))):
        return False
    return all(_condition(op, key, expected, context)
               for op, tests in (statement.get("Condition") or {}).items() for key, expected in tests.items())


def _condition(operator: str, key: str, expected, context: dict[str, list[str]]) -> bool:
    """One condition test (IAM user guide, "Condition operators")."""
    values = next((v for k, v in context.items() if k.lower() == key.lower()), None)
    expected = [_substitute(str(e), context) for e in _listed(expected if not isinstance(expected, bool)
                                                               else str(expected).lower())]
    qualifier = ""
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    if operator == "Null":
        return (values is None) == (expected[0].lower() == "true")
    if values is None:
        return if_exists or operator.startswith(("StringNot", "ArnNot")) and qualifier != "ForAnyValue" or \
            qualifier == "ForAllValues"
    negated = "Not" in operator
    base = operator.replace("Not", "")
    def match(value: str, pattern: str) -> bool:
        if base in ("StringEquals", "ArnEquals"):
            return value == pattern
        if base == "StringEqualsIgnoreCase":
            return value.lower() == pattern.lower()
        if base in ("StringLike", "ArnLike"):
            return _like(pattern, value)
        if base == "Bool":
            return value.lower() == pattern.lower()
        if base.startswith("Numeric"):
            a, b = float(value), float(pattern)
            return {"NumericEquals": a == b, "NumericLessThan": a < b, "NumericLessThanEquals": a <= b,
                    "NumericGreaterThan": a > b, "NumericGreaterThanEquals": a >= b}.get(base, False)
        return False  # an operator the course does not use: no match (never more lenient)
    if qualifier == "ForAllValues":
        result = all(any(match(v, p) for p in expected) for v in values)
    else:
        result = any(match(v, p) for v in values for p in expected)
    return not result if negated else result


def _denied(response, s3: bool, arn: str, action: str, resource: str, decision: str) -> Exception:
    """AWS's refusal: AccessDenied(Exception) naming the caller, the action and the resource."""
    from moto.core.exceptions import JsonRESTError, _RESTError

    why = (f"with an explicit deny in an identity-based policy" if decision == "deny"
           else f"because no identity-based policy allows the {action} action")
    message = f"User: {arn} is not authorized to perform: {action} on resource: {resource} {why}"
    if s3:
        from moto.s3.exceptions import BucketAccessDeniedError, S3AccessDeniedError

        bucket = resource.removeprefix("arn:aws:s3:::").split("/")[0]
        # A DeleteObjects answers 200 with each key refused in its Errors (moto does so on
        # BucketAccessDeniedError); any other request is refused whole.
        return BucketAccessDeniedError(bucket) if bucket and bucket != "*" else S3AccessDeniedError()
    if response.headers.get("X-Amz-Target") or "/2015-03-31/" in response.uri:  # JSON protocols
        error = JsonRESTError("AccessDeniedException", message)
        if "/2015-03-31/" in response.uri:
            error.code = 403
        return error
    error = _RESTError("AccessDenied", message)
    error.code = 403
    return error


# ---- credentials for functions --------------------------------------------------------


def role_credentials(role_arn: str, session_name: str, region: str) -> dict[str, str] | None:
    """Temporary credentials of ``role_arn`` from moto's STS, as Lambda gets them."""
    from moto.sts.models import sts_backends

    account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else DEFAULT_ACCOUNT_ID
    try:
        assumed = sts_backends[account]["global"].assume_role(
            region_name=region, role_session_name=session_name[:64], role_arn=role_arn,
            policy="", duration=CREDENTIALS_SECONDS, external_id="")
    except Exception:  # noqa: BLE001  (no such role: the function gets no credentials)
        log.warning("could not assume %s", role_arn)
        return None
    return {"AWS_ACCESS_KEY_ID": assumed.access_key_id, "AWS_SECRET_ACCESS_KEY": assumed.secret_access_key,
            "AWS_SESSION_TOKEN": assumed.session_token}
