"""Who may call the embedded AWS: credentials of its own, and every request signed as AWS checks it.

AWS: every API request carries a Signature Version 4 signature made with the caller's
secret key; AWS recomputes it and refuses a request that is unsigned, signed with an
access key it does not know, with the wrong secret, too long ago (5 minutes; 15 for S3),
or with temporary credentials that have expired, each with its service's own error
(table :data:`ERRORS`, from AWS's "Common Errors" pages and the S3 error-code list).

moto 5.2: answers anyone by default. Its opt-in check (``moto.iam.access_control``:
``IAMRequest.check_signature``, switched on by ``INITIAL_NO_AUTH_ACTION_COUNT``) finds keys
only among the IAM users and STS sessions the caller can itself create or delete (and
that a reset wipes), fails with a KeyError on an unsigned request, never looks at the
time or at an expiry, and is skipped by the routes that are not AWS APIs (its own
``/moto-api`` reset and dashboard included).

Here: when the process starts it makes a random access key and secret (the account
owner's, "the learner's own"), kept in ``$ECOM_HOME/credentials.json`` (file 0600,
folder 0700: only the user who started it can read them). :class:`Authenticator` checks
every request before moto sees it, with botocore's SigV4 signer (the one moto's check
uses) over the request as received. It accepts the owner's key, and the temporary keys
of STS sessions (the ones the Lambda runtime gives each function for its role) while
they are valid, with their session token. The process's own routes (``/_ecomlib/...``)
take the same signature (service name ``ecomlib``); API Gateway stages are served on
their own ports and stay open, as a stage is on AWS.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote

from botocore.utils import normalize_url_path

CREDENTIALS_FILE = "credentials.json"
CONTROL_SERVICE = "ecomlib"  # the signing name of the process's own routes
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

# How far a request's X-Amz-Date may be from the server's clock. AWS (IAM user guide,
# "Elements of an AWS API request signature"): "a request must reach AWS within five
# minutes of the time stamp in the request"; S3 allows 15 minutes (RequestTimeTooSkewed).
SKEW_MINUTES = 5
S3_SKEW_MINUTES = 15


# ---- the credentials file ----------------------------------------------------------------


def secure_home(home: Path) -> Path:
    """The state folder, created if needed, readable by its owner only (0700)."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    return home


def write_private(path: Path, text: str) -> None:
    """Write ``path`` atomically as a file only its owner can read (0600)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def new_credentials() -> dict[str, str]:
    """A random access key id (AWS's form: AKIA + 16 characters) and a 40-character secret."""
    key = "AKIA" + "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return {"aws_access_key_id": key, "aws_secret_access_key": secrets.token_urlsafe(30)[:40]}


def create_credentials(home: Path) -> dict[str, str]:
    """New credentials for a starting embedded AWS, saved in ``home`` (0600)."""
    credentials = new_credentials()
    write_private(secure_home(home) / CREDENTIALS_FILE, json.dumps(credentials))
    return credentials


def read_credentials(home: Path) -> dict[str, str] | None:
    try:
        return json.loads((home / CREDENTIALS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# ---- errors, as each protocol gives them ---------------------------------------------------


class Refused(Exception):
    """A request that fails authentication: ``kind`` is a key of :data:`ERRORS`."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.detail = detail


_BAD_SIGNATURE = ("The request signature we calculated does not match the signature you provided. "
                  "Check your AWS Secret Access Key and signing method. Consult the service documentation "
                  "for details.")
_INVALID_TOKEN = "The security token included in the request is invalid."
_EXPIRED_TOKEN = "The security token included in the request is expired"

# kind -> protocol family -> (HTTP status, code, message). "{detail}" is filled in.
ERRORS: dict[str, dict[str, tuple[int, str, str]]] = {
    "missing": {
        "json": (400, "MissingAuthenticationTokenException", "Missing Authentication Token"),
        "rest-json": (403, "MissingAuthenticationTokenException", "Missing Authentication Token"),
        "query": (403, "MissingAuthenticationToken",
                  "Request must contain either a valid (registered) AWS access key ID or X.509 certificate."),
        "s3": (403, "AccessDenied", "Access Denied"),  # an anonymous request, refused
        "ec2": (401, "AuthFailure", "AWS was not able to validate the provided access credentials"),
    },
    "unknown_key": {
        "json": (400, "UnrecognizedClientException", _INVALID_TOKEN),
        "rest-json": (403, "UnrecognizedClientException", _INVALID_TOKEN),
        "query": (403, "InvalidClientTokenId", _INVALID_TOKEN),
        "s3": (403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."),
        "ec2": (401, "AuthFailure", "AWS was not able to validate the provided access credentials"),
    },
    "bad_token": {
        "json": (400, "UnrecognizedClientException", _INVALID_TOKEN),
        "rest-json": (403, "UnrecognizedClientException", _INVALID_TOKEN),
        "query": (403, "InvalidClientTokenId", _INVALID_TOKEN),
        "s3": (400, "InvalidToken", "The provided token is malformed or otherwise invalid."),
        "ec2": (401, "AuthFailure", "AWS was not able to validate the provided access credentials"),
    },
    "expired_token": {
        "json": (400, "ExpiredTokenException", _EXPIRED_TOKEN),
        "rest-json": (403, "ExpiredTokenException", _EXPIRED_TOKEN),
        "query": (403, "ExpiredToken", _EXPIRED_TOKEN),
        "s3": (400, "ExpiredToken", "The provided token has expired."),
        "ec2": (400, "RequestExpired", "Request has expired."),
    },
    "bad_signature": {
        "json": (400, "InvalidSignatureException", _BAD_SIGNATURE),
        "rest-json": (403, "InvalidSignatureException", _BAD_SIGNATURE),
        "query": (403, "SignatureDoesNotMatch", _BAD_SIGNATURE),
        "s3": (403, "SignatureDoesNotMatch",
               "The request signature we calculated does not match the signature you provided. "
               "Check your key and signing method."),
        "ec2": (401, "AuthFailure", "AWS was not able to validate the provided access credentials"),
    },
    "stale": {
        "json": (400, "InvalidSignatureException", "Signature expired: {detail}"),
        "rest-json": (403, "InvalidSignatureException", "Signature expired: {detail}"),
        "query": (403, "SignatureDoesNotMatch", "Signature expired: {detail}"),
        "s3": (403, "RequestTimeTooSkewed", "The difference between the request time and the current time "
                                            "is too large."),
        "ec2": (400, "RequestExpired", "Request has expired."),
    },
    "presign_expired": {
        "json": (403, "InvalidSignatureException", "Signature expired: {detail}"),
        "rest-json": (403, "InvalidSignatureException", "Signature expired: {detail}"),
        "query": (403, "SignatureDoesNotMatch", "Signature expired: {detail}"),
        "s3": (403, "AccessDenied", "Request has expired"),
        "ec2": (400, "RequestExpired", "Request has expired."),
    },
}

# Signing name -> protocol family (botocore's service models: "protocol" in metadata).
PROTOCOLS = {
    "s3": "s3", "lambda": "rest-json", "apigateway": "rest-json", "execute-api": "rest-json",
    "sts": "query", "iam": "query", "redshift": "query", "cloudformation": "query", "sns": "query",
    "rds": "query", "elasticloadbalancing": "query", "ec2": "ec2", CONTROL_SERVICE: "rest-json",
}  # everything else the course calls speaks JSON (Kinesis, DynamoDB, Firehose, SQS, Logs, ...)
QUERY_COMPATIBLE = {"sqs"}  # JSON services that also name the error in the query protocol's words


def protocol_of(service: str | None, headers: dict, path: str, query: str, body: bytes) -> str:
    """The protocol family of a request: from its signing name, else from its shape."""
    if service:
        return PROTOCOLS.get(service, "json")
    if headers.get("x-amz-target"):
        return "json"
    if path.startswith(("/2015-03-31/", "/2017-10-31/", "/2018-10-31/", "/restapis", "/_ecomlib/")):
        return "rest-json"
    if "Action=" in query or body[:200].find(b"Action=") >= 0:
        return "query"
    return "s3"


def error_response(kind: str, protocol: str, detail: str = "", service: str | None = None,
                   request_id: str = "") -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of AWS's answer to a refused request."""
    status, code, message = ERRORS[kind][protocol]
    message = message.replace("{detail}", detail)
    reason = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}[status]
    headers = [("x-amzn-RequestId", request_id)]
    if protocol in ("json", "rest-json"):
        if service in QUERY_COMPATIBLE:
            code = ERRORS[kind]["query"][1]
            headers.append(("x-amzn-query-error", f"{code};Sender"))
        headers += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
        body = json.dumps({"__type": code, "message": message}).encode()
    elif protocol == "s3":
        headers.append(("Content-Type", "application/xml"))
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>{request_id}</RequestId></Error>").encode()
    elif protocol == "ec2":
        headers.append(("Content-Type", "text/xml"))
        body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>").encode()
    else:
        headers.append(("Content-Type", "text/xml"))
        body = (f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
                "</ErrorResponse>").encode()
    return f"{status} {reason}", headers, body


# ---- the check -------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who signed a request: the account owner, or an STS session of a role."""

    access_key: str
    role_arn: str | None = None  # None: the account owner (the learner's own credentials)
    session: object | None = None  # moto's AssumedRole

    @property
    def is_owner(self) -> bool:
        return self.role_arn is None


_AUTH = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)")


class Authenticator:
    """Checks each request's signature against the owner's credentials and STS sessions."""

    def __init__(self, credentials: dict[str, str]) -> None:
        self.owner_key = credentials["aws_access_key_id"]
        self.owner_secret = credentials["aws_secret_access_key"]
        self._sessions: dict[str, object] = {}  # access key -> moto AssumedRole (a cache)
        self._lock = threading.Lock()
        self._current = threading.local()  # .caller: who signed the request this thread answers

    def caller(self) -> Caller | None:
        """The caller of the request being answered on this thread (None outside a request)."""
        return getattr(self._current, "caller", None)

    def set_caller(self, caller: Caller | None) -> None:
        self._current.caller = caller

    def forget_sessions(self) -> None:
        """After a reset: moto's STS sessions are gone, so must their cached keys be."""
        with self._lock:
            self._sessions.clear()

    def _session(self, key: str):
        with self._lock:
            found = self._sessions.get(key)
        if found is not None:
            return found
        from moto.sts.models import sts_backends

        for account in list(sts_backends.keys()):
            for partition in list(sts_backends[account].keys()):
                for assumed in sts_backends[account][partition].assumed_roles:
                    if assumed.access_key_id == key:
                        with self._lock:
                            self._sessions[key] = assumed
                        return assumed
        return None

    def verify(self, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes,
               now: dt.datetime | None = None) -> tuple[Caller, str]:
        """(the caller, the signing name of the service) of a correctly signed request;
        raises :class:`Refused` otherwise. ``headers`` have lower-case names."""
        now = now or dt.datetime.now(dt.timezone.utc)
        params = dict(parse_qsl(query, keep_blank_values=True)) if "X-Amz-Signature" in query else {}
        presigned = "X-Amz-Signature" in params
        if presigned:
            credential, signed_headers = params.get("X-Amz-Credential", ""), params.get("X-Amz-SignedHeaders", "")
            signature, stamp = params["X-Amz-Signature"], params.get("X-Amz-Date", "")
            token = params.get("X-Amz-Security-Token")
        else:
            match = _AUTH.match(headers.get("authorization", ""))
            if not match:
                raise Refused("missing")
            credential, signed_headers, signature = match.groups()
            stamp = headers.get("x-amz-date", "")
            token = headers.get("x-amz-security-token")
        scope = credential.split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            raise Refused("missing")
        key, _, region, service, _ = scope
        try:  # YYYYMMDDTHHMMSSZ (strptime is slow)
            if len(stamp) != 16 or stamp[8] != "T" or stamp[15] != "Z":
                raise ValueError(stamp)
            signed_at = dt.datetime(int(stamp[0:4]), int(stamp[4:6]), int(stamp[6:8]), int(stamp[9:11]),
                                    int(stamp[11:13]), int(stamp[13:15]), tzinfo=dt.timezone.utc)
        except ValueError:
            raise _refused("missing", service) from None

        # Who: the owner (no session token), or a live STS session with its own token.
        if key == self.owner_key:
            if token:
                raise _refused("bad_token", service)
            caller, secret = Caller(key), self.owner_secret
        else:
            assumed = self._session(key)
            if assumed is None:
                raise _refused("unknown_key", service)
            if not token or not hmac.compare_digest(token, assumed.session_token):
                raise _refused("bad_token", service)
            if assumed.expiration.replace(tzinfo=dt.timezone.utc) <= now:
                raise _refused("expired_token", service)
            caller, secret = Caller(key, assumed.role_arn, assumed), assumed.secret_access_key

        # When: within AWS's window (or, presigned, before the URL expires).
        if presigned:
            expires = int(params.get("X-Amz-Expires", "0") or 0)
            if now > signed_at + dt.timedelta(seconds=expires):
                raise _refused("presign_expired", service, f"{stamp} is now earlier than {_stamp(now - dt.timedelta(seconds=expires))}")
        else:
            window = dt.timedelta(minutes=S3_SKEW_MINUTES if service == "s3" else SKEW_MINUTES)
            if signed_at < now - window:
                minutes = int(window.total_seconds() // 60)
                raise _refused("stale", service, f"{stamp} is now earlier than {_stamp(now - window)} "
                                                 f"({_stamp(now)} - {minutes} min.)")
            if signed_at > now + window:
                raise _refused("stale", service, f"{stamp} is still later than {_stamp(now + window)} "
                                                 f"({_stamp(now)} + {int(window.total_seconds() // 60)} min.)")

        # What: the signature over the request as received.
        expected = _signature(method, raw_path, query, headers, body, signed_headers, stamp,
                              region, service, key, secret, presigned)
        if not hmac.compare_digest(expected, signature):
            raise _refused("bad_signature", service)
        return caller, service


def _refused(kind: str, service: str, detail: str = "") -> Refused:
    refused = Refused(kind, detail)
    refused.service = service  # type: ignore[attr-defined]
    return refused


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _signature(method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes,
               signed_headers: str, stamp: str, region: str, service: str, key: str, secret: str,
               presigned: bool) -> str:
    """The SigV4 signature of the request as received, over the headers the client says it
    signed: botocore's canonical request (its path normalisation, its query ordering), with
    the signing key derived once a day per secret, region and service."""
    names = signed_headers.split(";")
    if presigned:  # the signature covers the query without itself
        query = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Signature="))
    if presigned and service == "s3":
        payload = "UNSIGNED-PAYLOAD"
    elif "x-amz-content-sha256" in names:
        payload = headers.get("x-amz-content-sha256", "")
    else:
        payload = hashlib.sha256(body).hexdigest()
    path = raw_path if service == "s3" else quote(normalize_url_path(raw_path), safe="/~")
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&")) if query else []
    canonical = "\n".join([
        method.upper(), path, "&".join(f"{k}={v}" for k, v in pairs),
        "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in names),
        signed_headers, payload])
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    string_to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(_signing_key(secret, stamp[:8], region, service), string_to_sign.encode(),
                    hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=256)
def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


# ---- signing the process's own routes --------------------------------------------------


def sign(method: str, url: str, body: bytes, credentials: dict[str, str], region: str,
         service: str = CONTROL_SERVICE) -> dict[str, str]:
    """Headers that sign a request to ``url`` with SigV4 (the control routes use this)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, data=body,
                         headers={"Content-Type": "application/json"} if body else {})
    SigV4Auth(Credentials(credentials["aws_access_key_id"], credentials["aws_secret_access_key"]),
              service, region).add_auth(request)
    return dict(request.headers.items())
