"""Reading what an API client sent: the JSON body, query parameters and page cursors.

Everything here turns bad input into an `ApiError` naming the field, before any database
work starts, so a rejected request has written nothing. Problems never echo a value that
could be a NIK: a client that put one in the wrong field must not get it back in a response
that ends up in its logs.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from aiohttp import web

from bot.services.applications import FIELDS

CHANGE_FIELDS = ("status", "alasan")
LIST_PARAMS = ("status", "kantor", "changed_since", "limit", "after")
_DIGITS = re.compile(r"\d{6,}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")

Problem = dict[str, Any]  # {"index"?: int, "field": str, "problem": str}


class ApiError(Exception):
    """A request the API refuses; becomes one JSON error response with this status."""

    def __init__(self, status: int, code: str, message: str,
                 errors: list[Problem] | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return web.json_response(body, status=self.status, headers=self.headers)


def masked(text: str) -> str:
    """Long runs of digits (a NIK, a phone number) out of anything sent back or logged."""
    return _DIGITS.sub("[digits]", text)


def field_name(key: str) -> str:
    """An unknown key as it may be named back: short, and never a NIK."""
    return key if _NAME.match(key) else masked(key[:64])


def problem(field: str, text: str, index: int | None = None) -> Problem:
    found: Problem = {"index": index} if index is not None else {}
    return found | {"field": field, "problem": masked(text)}


def invalid(errors: list[Problem]) -> ApiError:
    n = len(errors)
    return ApiError(422, "invalid", f"{n} problem{'s' if n != 1 else ''} in the request; "
                                    "nothing was written", errors)


def unknown_fields(obj: Mapping[str, Any], allowed: Iterable[str],
                   index: int | None = None) -> list[Problem]:
    known = set(allowed)
    return [problem(field_name(k), "unknown field", index) for k in obj if k not in known]


async def json_body(request: web.Request, max_body: int) -> dict[str, Any]:
    """The request's JSON object, read with a size limit of our own: the server-wide limit
    is sized for WhatsApp's webhooks, and a too-large body must get a JSON answer."""
    if request.content_type != "application/json" or (
            request.charset or "utf-8").lower() not in ("utf-8", "utf8"):
        raise ApiError(415, "unsupported_media_type",
                       "send the body as JSON with Content-Type: application/json")
    too_large = ApiError(413, "too_large", f"the body is larger than {max_body} bytes; "
                                           "send fewer applications per request")
    if request.content_length is not None and request.content_length > max_body:
        raise too_large
    raw = bytearray()
    async for chunk in request.content.iter_chunked(65_536):
        raw += chunk
        if len(raw) > max_body:
            raise too_large
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "bad_json", "the body is not valid JSON (UTF-8)") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    try:
        storable = _storable(data)
    except RecursionError:
        storable = False
    if not storable:
        raise ApiError(400, "bad_json", "the body is nested too deep or holds a NUL character "
                                        "(\\u0000) or half a surrogate pair")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _storable(value: Any) -> bool:
    """No string in it that a database refuses: PostgreSQL takes no NUL in text, and a lone
    surrogate ("\\ud800", valid JSON) is not UTF-8 at all."""
    if isinstance(value, str):
        return _utf8(value)
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return True


def _utf8(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def upsert_rows(body: Mapping[str, Any], max_items: int
                ) -> tuple[list[tuple[int, Mapping[str, Any]]], list[Problem]]:
    """The body of POST /applications as (index, object) rows for `applications.check_all`,
    with every structural problem (unknown or missing fields, wrong types) named."""
    errors = unknown_fields(body, ("applications",))
    items = body.get("applications")
    rows: list[tuple[int, Mapping[str, Any]]] = []
    if "applications" not in body:
        errors.append(problem("applications", "required"))
    elif not isinstance(items, list):
        errors.append(problem("applications", "must be a list of objects"))
    elif not items:
        errors.append(problem("applications", "must hold at least one application"))
    elif len(items) > max_items:
        errors.append(problem("applications", f"at most {max_items} applications per "
                                              "request"))
    else:
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                errors.append(problem("applications", "must be an object", i))
                continue
            errors += unknown_fields(item, FIELDS, i)
            rows.append((i, item))
    return rows, errors


@dataclass(frozen=True)
class ListQuery:
    """GET /applications, checked: filters, page size and where the last page ended."""

    status: str | None
    office: str | None
    since: datetime | None
    limit: int
    after: tuple[datetime, int] | None


def list_query(query: Mapping[str, str], statuses: set[str], offices: set[str], tz: tzinfo,
               max_limit: int, default_limit: int) -> ListQuery:
    errors = [problem(field_name(k), "unknown parameter") for k in query
              if k not in LIST_PARAMS]
    status, office = query.get("status") or None, query.get("kantor") or None
    if status is not None and status not in statuses:
        errors.append(problem("status", "unknown status"))
    if office is not None and office not in offices:
        errors.append(problem("kantor", "unknown office"))
    since = None
    if query.get("changed_since"):
        try:
            since = datetime.fromisoformat(query["changed_since"])
        except ValueError:
            errors.append(problem("changed_since", "not an ISO 8601 date or date-time"))
        else:
            if since.tzinfo is None:  # a wall-clock time in the office, as staff say it
                since = since.replace(tzinfo=tz)
    limit = default_limit
    if query.get("limit"):
        text = query["limit"]
        if not text.isdigit() or not 1 <= int(text) <= max_limit:
            errors.append(problem("limit", f"a whole number from 1 to {max_limit}"))
        else:
            limit = int(text)
    after = None
    if query.get("after"):
        after = decode_cursor(query["after"])
        if after is None:
            errors.append(problem("after", "not a cursor from a previous page's `next`"))
    if errors:
        raise invalid(errors)
    return ListQuery(status, office, since, limit, after)


def encode_cursor(changed_at: datetime, app_id: int) -> str:
    raw = f"{changed_at.astimezone(UTC).isoformat()}|{app_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    """An opaque cursor back into (status_changed_at, id), or None if it is not one of ours:
    opaque, so the order can change later without breaking clients."""
    if len(cursor) > 128:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        changed_at = datetime.fromisoformat(when)
        if changed_at.tzinfo is None or not ident.isdigit() or len(ident) > 12:
            return None
        return changed_at, int(ident)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
