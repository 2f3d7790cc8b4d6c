"""The floor: the calls a flow truly needs, made with bare boto3 and requests and nothing else.

(And AES-GCM: secrets are sealed under a KMS data key, as their size needs, docs/security.md.)

No routing, validation, models, idempotency library, logging, tracing or metrics: parse the form,
make the calls, answer a redirect. What the function spends beyond this is its overhead.

The minimum each flow needs (the design's, stated in docs/performance.md):

* sign-in (token POST): auth_info; DynamoDB: record the attempt (conditional put), spend the one-time
  value (conditional update), write the session, complete the attempt's record; KMS: a data key to
  encrypt the provider credentials with; EventBridge: publish the audit event.
* link (token POST): auth_info and link_account_native; DynamoDB: record the attempt, spend the
  one-time value, read the Registration session, add the identity to the session's list, complete the
  record; KMS: decrypt the data key of the Registration access token; EventBridge: publish the audit
  event.
* replay (the same submission again): DynamoDB: one conditional put that fails and returns the stored
  result.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from token_url.cookies import BROWSER_COOKIE

# The conditions the design needs (the same ones the function's store and Powertools send).
_CONSUME_CONDITION = (
    "attribute_exists(pk) AND expires_at > :now AND browser = :browser"
    " AND (attribute_not_exists(consumed_by) OR consumed_by = :attempt)"
)
_CLAIM_CONDITION = (
    "attribute_not_exists(#id) OR #expiry < :now"
    " OR (#status = :inprogress AND attribute_exists(#in_progress_expiry)"
    " AND #in_progress_expiry < :now_in_millis)"
)
BARE_HOSTS = {"social": "bare-social", "capture": "bare-capture"}
"""Host headers of the floor's upstream calls, so the emulator counts its connections apart."""


def _key(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


class BareHandler:
    """A handler for the token POST of a sign-in, a link and a replay, with nothing but the calls."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
        self.dynamodb = boto3.client("dynamodb", config=config)
        self.kms = boto3.client("kms", config=config)
        self.secrets = boto3.client("secretsmanager", config=config)
        self.events = boto3.client("events", config=config)
        self.audit_bus = environ["AUDIT_EVENT_BUS"]
        self.http = requests.Session()
        self.sessions = environ["SESSIONS_TABLE"]
        self.nonces = environ["NONCES_TABLE"]
        self.idempotency = environ["IDEMPOTENCY_TABLE"]
        self.key_id = environ["CREDENTIALS_KEY_ID"]
        self.social_login = environ["SOCIAL_LOGIN_BASE_URL"]
        self.capture = environ["CAPTURE_BASE_URL"]
        self.secret_id = environ["SOCIAL_LOGIN_API_KEY_SECRET"]
        self.client_id = environ["CAPTURE_CLIENT_ID"]
        self.flow = environ["CAPTURE_FLOW"]
        self.flow_version = environ["CAPTURE_FLOW_VERSION"]
        self.locale = environ["CAPTURE_LOCALE"]
        self.redirect_uri = environ["CAPTURE_REDIRECT_URI"]
        self.app_url = environ["APP_URL"]
        self.public_base_url = environ["PUBLIC_BASE_URL"]
        self.api_key: str | None = None
        self.caller: tuple[str | None, str | None, str | None] = (None, None, None)
        self.api_key_expires = 0.0
        self.secret_max_age = int(environ.get("SECRET_MAX_AGE_SECONDS", "300"))

    # ------------------------------------------------------------ preparation (not timed)

    def start(self, *, session: str | None = None) -> tuple[str, str]:
        """A one-time value and a browser binding, as POST /token-url writes them: (nonce, browser)."""
        nonce, browser = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        item: dict[str, Any] = {
            "pk": {"S": _key("bare-nonce", nonce)},
            "browser": {"S": browser},
            "intent": {"S": "link" if session else "sign_in"},
            "expires_at": {"N": str(int(time.time()) + 600)},
        }
        if session:
            item["session"] = {"S": session}
        self.dynamodb.put_item(TableName=self.nonces, Item=item)
        return nonce, browser

    def token_url(self, nonce: str) -> str:
        """The URL a one-time value is issued in, as the function builds it (auth_info gets it back)."""
        return f"{self.public_base_url}/token?nonce={nonce}"

    def registration_session(self, access_token: str) -> str:
        pk = _key("bare-session", secrets.token_urlsafe(32))
        sealed = self._seal(access_token, {"session": pk, "field": "capture_token"})
        self.dynamodb.put_item(
            TableName=self.sessions, Item={"pk": {"S": pk}, "capture_token": {"B": sealed}}
        )
        return pk

    # ------------------------------------------------------------ the token POST

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        body = event.get("body") or ""
        context = event.get("requestContext", {})
        self.caller = (
            context.get("requestId"),
            context.get("http", {}).get("sourceIp"),
            context.get("http", {}).get("userAgent"),
        )
        form = parse_qs(base64.b64decode(body).decode() if event.get("isBase64Encoded") else body)
        token = form["token"][0]
        nonce = parse_qs(event["rawQueryString"])["nonce"][0]
        token_url = self.token_url(nonce)
        browser = next(
            c.split("=", 1)[1] for c in event.get("cookies", []) if c.startswith(f"{BROWSER_COOKIE}=")
        )
        attempt = _key("bare-attempt", token, nonce, browser)
        stored = self._record_attempt(attempt)
        if stored is not None:
            return self._redirect(json.loads(stored)["result"])
        now = int(time.time())
        consumed = self.dynamodb.update_item(
            TableName=self.nonces,
            Key={"pk": {"S": _key("bare-nonce", nonce)}},
            UpdateExpression="SET consumed_by = :attempt",
            ConditionExpression=_CONSUME_CONDITION,
            ExpressionAttributeValues={
                ":attempt": {"S": attempt},
                ":now": {"N": str(now)},
                ":browser": {"S": browser},
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        if consumed["intent"]["S"] == "sign_in":
            result = self._sign_in(token, token_url)
        else:
            result = self._link(token, token_url, consumed["session"]["S"])
        # What a replay must give back: the outcome and the session to restore (sealed), as the flow keeps.
        data = json.dumps({"result": result, "sealed_session": secrets.token_urlsafe(96) if result else None})
        self.dynamodb.update_item(
            TableName=self.idempotency,
            Key={"id": {"S": attempt}},
            UpdateExpression="SET #response_data = :response_data, #expiry = :expiry, #status = :status",
            ExpressionAttributeNames={"#response_data": "data", "#expiry": "expiration", "#status": "status"},
            ExpressionAttributeValues={
                ":response_data": {"S": data},
                ":expiry": {"N": str(now + 600)},
                ":status": {"S": "COMPLETED"},
            },
        )
        return self._redirect(result)

    def _record_attempt(self, attempt: str) -> str | None:
        """Claim the attempt, or get its stored result: the conditional put an idempotency record needs.

        The condition is the one any idempotency record needs (claimable if absent, expired, or left in
        progress by a timed-out invocation), so moto evaluates the same expression for both sides.
        """
        now = time.time()
        try:
            self.dynamodb.put_item(
                TableName=self.idempotency,
                Item={
                    "id": {"S": attempt},
                    "expiration": {"N": str(int(now) + 600)},
                    "status": {"S": "INPROGRESS"},
                    "in_progress_expiration": {"N": str(int(now * 1000) + 15_000)},
                },
                ConditionExpression=_CLAIM_CONDITION,
                ExpressionAttributeNames={
                    "#id": "id",
                    "#expiry": "expiration",
                    "#in_progress_expiry": "in_progress_expiration",
                    "#status": "status",
                },
                ExpressionAttributeValues={
                    ":now": {"N": str(int(now))},
                    ":now_in_millis": {"N": str(int(now * 1000))},
                    ":inprogress": {"S": "INPROGRESS"},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            stored: Any = error.response.get("Item", {})  # ReturnValuesOnConditionCheckFailure=ALL_OLD
            return str(stored["data"]["S"])
        return None

    def _auth_info(self, token: str, token_url: str) -> dict[str, Any]:
        if self.api_key is None or time.monotonic() >= self.api_key_expires:
            # Cached as the function caches it: one read per container per SECRET_MAX_AGE_SECONDS.
            self.api_key = self.secrets.get_secret_value(SecretId=self.secret_id)["SecretString"]
            self.api_key_expires = time.monotonic() + self.secret_max_age
        reply = self.http.post(
            f"{self.social_login}/api/v2/auth_info",
            data={"apiKey": self.api_key, "token": token, "extended": "false", "tokenUrl": token_url},
            headers={"Host": BARE_HOSTS["social"]},
            timeout=(2, 6),
        )
        info: dict[str, Any] = reply.json()
        if info.get("stat") != "ok":
            raise RuntimeError(f"auth_info failed: {info.get('err')}")
        return info

    def _sign_in(self, token: str, token_url: str) -> str:
        info = self._auth_info(token, token_url)
        pk = _key("bare-session", secrets.token_urlsafe(32))
        credentials = json.dumps(info.get("accessCredentials"))
        sealed = self._seal(credentials, {"session": pk, "field": "credentials"})
        self.dynamodb.put_item(
            TableName=self.sessions,
            Item={
                "pk": {"S": pk},
                "identifier": {"S": info["profile"]["identifier"]},
                "credentials": {"B": sealed},
                "expires_at": {"N": str(int(time.time()) + 3600)},
            },
        )
        self._publish("SignedIn", info, pk)
        return "signed_in"

    def _link(self, token: str, token_url: str, session: str) -> str:
        item = self.dynamodb.get_item(
            TableName=self.sessions, Key={"pk": {"S": session}}, ConsistentRead=True
        )
        sealed = item["Item"]["capture_token"]["B"]
        info = self._auth_info(token, token_url)
        access_token = self._open(sealed, {"session": session, "field": "capture_token"})
        reply = self.http.post(
            f"{self.capture}/oauth/link_account_native",
            data={
                "client_id": self.client_id,
                "flow": self.flow,
                "flow_version": self.flow_version,
                "locale": self.locale,
                "redirect_uri": self.redirect_uri,
                "token": token,
                "access_token": access_token,
            },
            headers={"Host": BARE_HOSTS["capture"]},
            timeout=(2, 6),
        )
        if reply.json().get("stat") != "ok":
            raise RuntimeError(f"link_account_native failed: {reply.text[:200]}")
        self.dynamodb.update_item(
            TableName=self.sessions,
            Key={"pk": {"S": session}},
            UpdateExpression="ADD linked :identifier",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":identifier": {"SS": [info["profile"]["identifier"]]}},
        )
        self._publish("Linked", info, session)
        return "linked"

    def _seal(self, plaintext: str, context: dict[str, str]) -> bytes:
        """A data key's KMS ciphertext, a nonce and the AES-GCM ciphertext, side by side."""
        data_key = self.kms.generate_data_key(KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=context)
        nonce = secrets.token_bytes(12)
        data = AESGCM(data_key["Plaintext"]).encrypt(nonce, plaintext.encode(), json.dumps(context).encode())
        encrypted_key = data_key["CiphertextBlob"]
        return len(encrypted_key).to_bytes(2, "big") + encrypted_key + nonce + data

    def _open(self, sealed: bytes, context: dict[str, str]) -> str:
        key_end = 2 + int.from_bytes(sealed[:2], "big")
        data_key = self.kms.decrypt(CiphertextBlob=sealed[2:key_end], EncryptionContext=context)["Plaintext"]
        nonce, data = sealed[key_end : key_end + 12], sealed[key_end + 12 :]
        return AESGCM(data_key).decrypt(nonce, data, json.dumps(context).encode()).decode()

    def _publish(self, detail_type: str, info: dict[str, Any], session: str) -> None:
        """The audit event: one PutEvents entry with the detail the function sends (docs/audit-events.md)."""
        now = time.time()
        detail = {
            "event_id": secrets.token_hex(16),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now)),
            "outcome": detail_type.lower(),
            "provider": info["profile"].get("providerName"),
            "identifier": info["profile"]["identifier"],
            "uuid": None,
            "session": _key("bare-handle", session)[:32],
            "request_id": self.caller[0],
            "source_ip": self.caller[1],
            "user_agent": self.caller[2],
        }
        self.events.put_events(
            Entries=[
                {
                    "Source": "token-url",
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": self.audit_bus,
                }
            ]
        )

    def _redirect(self, result: str) -> dict[str, Any]:
        return {"statusCode": 303, "headers": {"Location": f"{self.app_url}?result={result}"}, "body": ""}
