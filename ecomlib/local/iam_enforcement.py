"""IAM, enforced on request: each function's calls are checked against its own role.

AWS: every request is signed by an identity and allowed only if that identity's policies
allow the action on the resource. A Lambda function calls AWS with temporary
credentials of its execution role, so a permission missing from the role fails its call
with AccessDenied.

moto 5.2: checks nothing by default. Its opt-in checks (``INITIAL_NO_AUTH_ACTION_COUNT``)
apply to every caller, and outside S3 it compares only the action: a statement scoped to
one stream or table never matches, so least-privilege policies are always denied.

Here: the Lambda runtime always gives a function its role's credentials (from STS
AssumeRole, as AWS does). When enforcement is on (``POST /_ecomlib/iam``
``{"enforce": true}``, off by default), a request signed with role credentials is checked
against the role's policies: in S3 action *and* resource (moto's own check); elsewhere
the action only, whatever resource a statement names, because that is all moto can
compare. Requests with the embedded AWS's own credentials (notebooks, the CLI: see
``auth``) are always allowed: they stand for the account owner. The gap-fillers that read moto's
state in-process (stream pollers, Firehose, the warehouse's COPY) are not checked.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from urllib.parse import urlparse

from moto.core import DEFAULT_ACCOUNT_ID

from ecomlib.local.component import Component, Route

log = logging.getLogger("ecomlib.iam")

CREDENTIALS_SECONDS = 43_200  # how long a function's role credentials last (STS's maximum)
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


class IamEnforcement(Component):
    """Whether role-signed requests are checked, and the check itself (moto calls
    :meth:`authorize` for every request: see ``patches``)."""

    name = "iam"

    def __init__(self) -> None:
        self.enforced = False
        self._lock = threading.Lock()

    def reset(self) -> None:
        self.enforce(False)

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

    def authorize(self, response, iam_request_cls, resource: str = "*") -> None:
        """Check one request (moto's ``BaseResponse`` ``response``) when enforcement is on;
        raises AWS's AccessDenied error when the caller's role does not allow it."""
        from moto.core.exceptions import JsonRESTError
        from moto.iam.access_control import IAMPolicy, IAMRequest, PermissionResult

        from ecomlib.local.auth import current_caller

        if not self.enforced:
            return
        caller = current_caller()
        if caller is None or caller.is_owner:
            return
        parsed = urlparse(response.uri)
        path = parsed.path + ("?" + parsed.query if parsed.query else "")
        request = iam_request_cls(account_id=response.current_account, method=response.method, path=path,
                                  data=response.data, body=response.raw_body, headers=response.headers,
                                  action=response._get_action())  # noqa: SLF001
        if iam_request_cls is not IAMRequest:  # S3: moto checks the resource too
            request.check_action_permitted(resource)
            return
        permitted, denied = False, False
        for document in request._access_key.collect_policies():  # noqa: SLF001
            result = IAMPolicy(_actions_only(document)).is_action_permitted(request._action, "*")  # noqa: SLF001
            denied = denied or result == PermissionResult.DENIED
            permitted = permitted or result == PermissionResult.PERMITTED
        if denied or not permitted:
            arn, action = request._access_key.arn, request._action  # noqa: SLF001
            log.info("denied %s to %s", action, arn)
            message = f"User: {arn} is not authorized to perform: {action}"
            if response.headers.get("X-Amz-Target"):  # a JSON service answers in JSON, as on AWS
                raise JsonRESTError("AccessDeniedException", message)
            request._raise_access_denied()  # noqa: SLF001


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


# ---- the check ------------------------------------------------------------------------


def _access_key(headers, uri: str) -> str | None:
    match = _CREDENTIAL.search(headers.get("Authorization", "") or "")
    if match:
        return match.group(1)
    match = re.search(r"X-Amz-Credential=([^%/&]+)", uri)
    return match.group(1) if match else None


def _actions_only(document) -> str:
    """The policy with every statement's resource widened to "*" (moto matches resources
    only in S3; elsewhere it compares the action, and a named resource would never match)."""
    if hasattr(document, "versions"):  # a managed policy: its default version
        document = next(v.document for v in document.versions if v.is_default)
    policy = json.loads(document) if isinstance(document, str) else document
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    return json.dumps({**policy, "Statement": [{**{k: v for k, v in s.items() if k != "NotResource"},
                                                "Resource": "*"} for s in statements]})
