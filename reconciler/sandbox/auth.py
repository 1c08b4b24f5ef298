"""OAuth2 client credentials for the sandbox: issues JWT-shaped bearer tokens and checks them.

Tokens are HS256-signed with a secret made per run, carry `azp` (the client id, which
sentinelhub-py reads) and `exp`; a batch endpoint accepts only a token it signed that has not
expired. Real wall-clock time is used here, whatever the job clock's speed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class TokenIssuer:
    client_id: str
    client_secret: str
    issuer: str
    ttl: int = 3600
    clock: Callable[[], float] = time.time
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def credentials_match(self, client_id: str | None, client_secret: str | None) -> bool:
        return hmac.compare_digest(client_id or "", self.client_id) and hmac.compare_digest(
            client_secret or "", self.client_secret
        )

    def issue(self) -> dict:
        now = self.clock()
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {
            "iss": self.issuer,
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, self.client_id)),
            "azp": self.client_id,
            "iat": int(now),
            "exp": math.ceil(now + self.ttl),  # whole seconds, never short of the ttl
            "jti": str(uuid.uuid4()),
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        token = f"{signing_input}.{_b64(self._sign(signing_input))}"
        return {
            "access_token": token,
            "expires_in": self.ttl,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "email profile",
        }

    def check(self, authorization: str | None) -> str | None:
        """None when the header carries a valid token; otherwise why not."""
        if not authorization or not authorization.startswith("Bearer "):
            return "missing bearer token"
        token = authorization[len("Bearer "):].strip()
        try:
            signing_input, signature = token.rsplit(".", 1)
            if not hmac.compare_digest(_unb64(signature), self._sign(signing_input)):
                return "invalid token"
            payload = json.loads(_unb64(signing_input.split(".", 1)[1]))
        except (ValueError, json.JSONDecodeError):
            return "invalid token"
        if payload.get("exp", 0) <= self.clock():
            return "token expired"
        return None

    def _sign(self, signing_input: str) -> bytes:
        return hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
