"""What every webhook shares: reading a capped body, parsing JSON, clear error answers."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

M = TypeVar("M", bound=BaseModel)


class BodyLimit:
    """Answer 413 to any request body over `limit` bytes (or the limit `routes` gives its path),
    before a handler reads it all."""

    def __init__(self, app: ASGIApp, limit: int, routes: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default = limit
        self.routes = dict(routes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.routes.get(scope.get("path", ""), self.default)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(send, limit)
        except ClientDisconnect:
            pass  # the client left (or was cut off for sending too slowly): nobody to answer


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body is larger than {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# What every webhook can answer besides its 202 (stored), for the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed JSON"},
    413: {"description": "request body too large"},
    422: {"description": "valid JSON of the wrong shape; the message names each bad field"},
    503: {"description": "not stored (database unavailable): retry later"},
}


# No webhook payload nests deeper than about 6 levels; a deeper one is an attack on the parser (the
# standard library's recurses, and so do pydantic and the JSON encoder after it).
MAX_JSON_DEPTH = 32


def _not_json(constant: str) -> float:
    raise ValueError(f"{constant} is not JSON")  # Python's json accepts NaN and Infinity; JSON does not


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def _deeper_than(data: Any, limit: int) -> bool:
    """Iterative, so it cannot itself run out of stack."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json(raw: bytes) -> Any:
    """The body as JSON, or 400 for anything that is not (strict) JSON, including what makes Python's
    parser fail other than with a syntax error: nesting past its recursion limit, integers past
    `sys.get_int_max_str_digits()` (4300 digits). Never a 5xx: the sender would retry it for ever."""
    if not raw.strip():
        raise HTTPException(400, "empty body: expected a JSON object")
    try:
        data = json.loads(raw, parse_constant=_not_json, parse_float=_finite)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(400, f"malformed JSON: {exc}") from exc
    except RecursionError as exc:
        raise HTTPException(400, f"malformed JSON: nested deeper than {MAX_JSON_DEPTH} levels") from exc
    except ValueError as exc:  # an integer of more than 4300 digits, NaN, Infinity
        reason = "a number has too many digits" if "digits" in str(exc) else str(exc)
        raise HTTPException(400, f"malformed JSON: {reason}") from exc
    count = raw.count(b"[") + raw.count(b"{")  # an upper bound of the depth, counted in C
    if count > MAX_JSON_DEPTH and isinstance(data, dict | list) and _deeper_than(data, MAX_JSON_DEPTH):
        raise HTTPException(400, f"malformed JSON: nested deeper than {MAX_JSON_DEPTH} levels")
    try:  # valid JSON may still hold text no database can store (a lone surrogate: "\ud800")
        text = json.dumps(data, ensure_ascii=False)
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise HTTPException(400, "malformed JSON: text that is not valid Unicode (a lone surrogate)") from exc
    if "\\u0000" in text or "\x00" in text:  # PostgreSQL text cannot hold NUL characters
        raise HTTPException(400, "malformed JSON: text contains a NUL character")
    return data


def validate(model: type[M], data: Any) -> M:
    """Validate or answer 422 naming every bad field (e.g. `alerts.0.startsAt: ...`)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '(body)'}: {err['msg']}" for err in exc.errors()[:20]
        ]
        raise HTTPException(422, {"message": "invalid payload", "errors": problems}) from exc


async def read_body(request: Request) -> bytes:
    return await request.body()


def utc_time(value: datetime) -> datetime:
    """A payload's time in UTC (naive means UTC). Times that leave years 1-9999 once converted
    (0001-01-01T00:00:00+01:00) are a validation error (422), not a database error later."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time is out of range once converted to UTC") from None


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a route that reads its body itself (to verify signatures over the raw bytes):
    the JSON body `model` describes, for docs and for schema-driven tests."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
