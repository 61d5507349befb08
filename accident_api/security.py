"""Security at the HTTP boundary: optional API keys on prediction and feedback endpoints,
response headers.

API keys are off unless API_KEYS or API_KEYS_FILE provides at least one (the local demo needs
none; the production profile sets them). A prediction or feedback request must then carry one
in `Authorization: Bearer <key>` or `X-API-Key: <key>`; the SHA-256 digest of the presented key
is compared with `hmac.compare_digest` against the digest of every configured key (equal
lengths, so the time taken says nothing about a key's length; no early exit on the first
match). Keys are never logged or echoed, and only their digests are kept after start-up.
Other endpoints (docs, card, health) stay open: they hold no secret.
"""
import base64
import hashlib
import hmac
import re
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, current_app, request
from werkzeug.exceptions import Unauthorized

from accident_api.blueprints import PROTECTED_ENDPOINTS
from accident_api.config import ConfigError

KEYS_EXTENSION = "accident_api.api_keys"
REALM = 'Bearer realm="accident-api"'
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


class ApiKeyError(ConfigError):
    """The configured key file cannot be used."""


def load_keys(keys=(), keys_file=None) -> tuple:
    """SHA-256 digests of the keys from the API_KEYS list and the API_KEYS_FILE file (one per
    line, # comments, also indented ones)."""
    found = [k.strip() for k in keys if k and k.strip()]
    if keys_file:
        try:
            lines = Path(keys_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ApiKeyError(
                f"API_KEYS_FILE {keys_file} cannot be read ({exc.strerror})") from None
        stripped = (line.strip() for line in lines)
        found += [line for line in stripped if line and not line.startswith("#")]
    short = [k for k in found if len(k) < 16]
    if short:
        raise ApiKeyError(f"{len(short)} API key(s) shorter than 16 characters: use long random "
                          "keys (e.g. `openssl rand -hex 32`)")
    return tuple(_digest(k.encode()) for k in found)


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def presented_key() -> bytes | None:
    """The key a request carries, from Authorization: Bearer or X-API-Key."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip().encode()
    key = request.headers.get("X-API-Key")
    return key.strip().encode() if key else None


def key_is_valid(presented: bytes | None, digests: tuple) -> bool:
    """Constant-time comparison of the presented key's digest against every key digest (the
    loop never stops early; compare_digest on unequal lengths would return at once)."""
    if presented is None:
        return False
    candidate = _digest(presented)
    valid = False
    for digest in digests:
        valid |= hmac.compare_digest(candidate, digest)
    return valid


def require_api_key():
    """before_request: a prediction without a valid key is 401 (JSON, WWW-Authenticate)."""
    if request.endpoint not in PROTECTED_ENDPOINTS:
        return None
    if key_is_valid(presented_key(), current_app.extensions[KEYS_EXTENSION]):
        return None
    error = Unauthorized(description="A valid API key is required: send `Authorization: "
                                     "Bearer <key>` or `X-API-Key: <key>`.")
    error.data = {"headers": {"WWW-Authenticate": REALM}}
    raise error


def content_security_policy(body: bytes, asset_origin: str = "") -> str:
    """CSP for an HTML page: its own inline scripts by hash; Swagger UI's files from 'self'
    (or from `asset_origin` when OPENAPI_SWAGGER_UI_URL points at a CDN)."""
    hashes = ["'sha256-" + base64.b64encode(hashlib.sha256(s).digest()).decode() + "'"
              for s in _INLINE_SCRIPT.findall(body)]
    own = " ".join(filter(None, ["'self'", asset_origin]))
    directives = [
        "default-src 'none'",
        " ".join(["script-src", own, *hashes]),
        # Swagger UI's React code sets style attributes; styles cannot run code
        f"style-src {own} 'unsafe-inline'",
        f"img-src {own} data:", f"font-src {own} data:",
        "connect-src 'self'",  # /openapi.json and "Try it out"
        "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


# On every response unless the view set its own value.
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
                    ("Referrer-Policy", "no-referrer"))


def security_headers(response):
    """after_request: headers on every response, a CSP on HTML pages (landing, Swagger UI)."""
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html" and not response.direct_passthrough:
        ui = urlsplit(current_app.config.get("OPENAPI_SWAGGER_UI_URL") or "")
        origin = f"{ui.scheme}://{ui.netloc}" if ui.netloc else ""
        response.headers["Content-Security-Policy"] = content_security_policy(
            response.get_data(), origin)
    return response


def keys_configured(app: Flask) -> bool:
    """True when `app` requires API keys on its prediction and feedback endpoints."""
    return bool(app.extensions[KEYS_EXTENSION])


def init_app(app: Flask) -> None:
    """Keys from the config, the hooks, and debug mode forced off (FLASK_DEBUG is ignored)."""
    app.debug = False
    app.extensions[KEYS_EXTENSION] = load_keys(app.config.get("API_KEYS") or (),
                                               app.config.get("API_KEYS_FILE"))
    if app.extensions[KEYS_EXTENSION]:  # no keys, no check: no hook on every request
        app.before_request(require_api_key)
    app.after_request(security_headers)
