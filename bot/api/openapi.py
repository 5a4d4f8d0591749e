"""The OpenAPI 3.1 description of /api/v1/, served at /api/v1/openapi.json.

Built from the loaded content, so the enums (statuses, offices, services) are the ones this
office's Lontar accepts today, and an office's integrator can generate a client from it.
"""

from __future__ import annotations

from typing import Any

from bot.services.applications import FIELDS
from flows.content import Content
from flows.status import REG_NO

VERSION = "1.0.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    what = {400: "The body is not a JSON object.",
            401: "No token, or an unknown or revoked one.",
            403: "A read token on a write route.",
            404: "No application with this registration number.",
            409: "Another request wrote the same applications at the same time; send again.",
            413: "The body is too large.",
            415: "The body is not sent as application/json.",
            422: "Fields are unknown, missing, of the wrong type or not valid; every problem "
                 "is listed, and nothing was written."}
    return {str(c): _json(_ref("Error"), what[c]) for c in codes}


def document(content: Content, *, max_items: int, max_body: int,
             max_limit: int) -> dict[str, Any]:
    ac = content.applications
    assert ac is not None
    statuses = [s.id for s in ac.status]
    offices = [o.id for o in content.offices]
    services = sorted(content.services)
    text: dict[str, Any] = {"type": "string"}
    when = {"type": "string", "format": "date-time"}
    reg_no = {"type": "string", "pattern": REG_NO.pattern,
              "description": "Registration number; case does not matter (stored upper-case)."}
    reason = {"type": ["string", "null"], "maxLength": 500,
              "description": "Shown to the citizen; required for statuses of type action "
                             "or closed ("
                             + ", ".join(s.id for s in ac.status
                                         if s.type in ("action", "closed")) + ")."}
    application = {
        "type": "object", "additionalProperties": False,
        "required": ["nomor_registrasi", "layanan", "kantor", "status", "alasan",
                     "status_changed_at"],
        "properties": {"nomor_registrasi": text, "layanan": text, "kantor": text, "status": text,
                       "alasan": {"type": ["string", "null"]}, "status_changed_at": when}}
    history = {
        "type": "object", "additionalProperties": False,
        "required": ["status_before", "status_after", "alasan", "source", "created_at"],
        "properties": {"status_before": {"type": ["string", "null"]}, "status_after": text,
                       "alasan": {"type": ["string", "null"]},
                       "source": {"type": "string", "description": "import, dashboard or api"},
                       "created_at": when}}
    fields: dict[str, Any] = {
        "nomor_registrasi": reg_no,
        "layanan": {"type": "string", "enum": services},
        "kantor": {"type": "string", "enum": offices},
        "status": {"type": "string", "enum": statuses},
        "alasan": reason,
        "nik": {"type": ["string", "null"], "description": "16-digit NIK (optional)."},
        "tanggal_lahir": {"type": ["string", "null"], "format": "date",
                          "description": "Birth date, YYYY-MM-DD."}}
    assert set(fields) == set(FIELDS), "the description lags behind applications.FIELDS"
    item = {
        "type": "object", "additionalProperties": False, "properties": fields,
        "required": ["nomor_registrasi", "layanan", "kantor", "status"],
        "description": "One application, created or replaced whole (matched by number): a "
                       "field left out is cleared. A birth date or a NIK is needed for the "
                       "citizen's verification; the NIK is stored only as a keyed hash and "
                       "never returned."}
    error = {
        "type": "object", "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "A stable code, e.g. invalid, "
                                                       "unauthorized, not_found."},
            "message": text,
            "errors": {"type": "array", "items": {
                "type": "object", "required": ["field", "problem"],
                "properties": {"index": {"type": "integer", "description":
                                         "Position in `applications` (POST only)."},
                               "field": text, "problem": text}}}}}
    path_reg_no = {"name": "reg_no", "in": "path", "required": True, "schema": reg_no,
                   "description": "URL-encode a '/' in the number as %2F."}
    read: list[dict[str, list[str]]] = [{"bearer": []}]
    write = read  # one scheme; the token's scope is checked by the server

    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema,
                "description": description}

    paths = {
        "/api/v1/applications": {
            "get": {
                "operationId": "listApplications", "security": read,
                "summary": "Applications, oldest status change first, a page at a time",
                "parameters": [
                    query("status", {"type": "string", "enum": statuses}, "Only this status."),
                    query("kantor", {"type": "string", "enum": offices}, "Only this office."),
                    query("changed_since", {"type": "string"},
                          "ISO 8601 date or date-time; without an offset it is office time."),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": max_limit,
                                    "default": 100}, "Page size."),
                    query("after", {"type": "string"}, "The `next` of the previous page.")],
                "responses": {"200": _json({
                    "type": "object", "required": ["applications", "next"],
                    "properties": {"applications": {"type": "array",
                                                    "items": _ref("Application")},
                                   "next": {"type": ["string", "null"], "description":
                                            "Pass as `after` for the next page; null at the "
                                            "end."}}}, "One page."),
                    **_errors(401, 422)}},
            "post": {
                "operationId": "upsertApplications", "security": write,
                "summary": "Create or update applications, all or nothing (write scope)",
                "description": f"At most {max_items} applications and {max_body} bytes per "
                               "request. Every item is checked first; with any problem, "
                               "nothing is written. A status change is recorded in the "
                               "history and sent to every chat following the application.",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "additionalProperties": False,
                               "required": ["applications"],
                               "properties": {"applications": {
                                   "type": "array", "minItems": 1, "maxItems": max_items,
                                   "items": _ref("ApplicationInput")}}}}}},
                "responses": {"200": _json({
                    "type": "object",
                    "required": ["received", "created", "updated", "unchanged", "notified"],
                    "properties": {k: {"type": "integer"} for k in (
                        "received", "created", "updated", "unchanged", "notified")}},
                    "Written; `notified` counts the messages queued to subscribers."),
                    **_errors(400, 401, 403, 409, 413, 415, 422)}},
        },
        "/api/v1/applications/{reg_no}": {
            "parameters": [path_reg_no],
            "get": {
                "operationId": "getApplication", "security": read,
                "summary": "One application with its status history",
                "responses": {"200": _json({"allOf": [_ref("Application"), {
                    "type": "object", "required": ["history"],
                    "properties": {"history": {"type": "array", "items": _ref("History")}}}]},
                    "The application."), **_errors(401, 404)}},
            "patch": {
                "operationId": "changeStatus", "security": write,
                "summary": "Change one application's status (write scope)",
                "description": "The same status and reason again changes nothing and "
                               "notifies no one.",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "additionalProperties": False,
                               "required": ["status"],
                               "properties": {"status": {"type": "string", "enum": statuses},
                                              "alasan": reason}}}}},
                "responses": {"200": _json({
                    "type": "object",
                    "required": ["nomor_registrasi", "status_before", "status", "changed",
                                 "notified"],
                    "properties": {"nomor_registrasi": text, "status_before": text, "status": text,
                                   "changed": {"type": "boolean"},
                                   "notified": {"type": "integer"}}},
                    "Done; `notified` counts the chats told of the change."),
                    **_errors(400, 401, 403, 404, 413, 415, 422)}},
        },
        "/api/v1/openapi.json": {
            "get": {"operationId": "openapi", "security": [],
                    "summary": "This description",
                    "responses": {"200": {"description": "OpenAPI 3.1 document.",
                                          "content": {"application/json": {}}}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Lontar staff API", "version": VERSION,
                 "description": "For the office's own systems: look up and update "
                                "applications (permohonan). Tokens: `lontar api-token create "
                                "NAME --scope read|write`. Errors are JSON: `error` (a code), "
                                "`message`, and for bad input `errors`, each naming its "
                                "field."},
        "servers": [{"url": "/"}],
        "security": read,
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A token from `lontar api-token "
                                                          "create`."}},
            "schemas": {"Application": application, "History": history,
                        "ApplicationInput": item, "Error": error}},
    }
