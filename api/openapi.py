"""The OpenAPI document, with every error each operation can answer described as what the server
really sends: an RFC 9457 ``application/problem+json`` document (issue 19, finding 18).

FastAPI documents only a 422 with its own ``HTTPValidationError`` shape, which no answer of this
service has (api/errors.py turns every error into a problem document). Here each operation gets:

* always: 400 (path not canonical; the server's own parse error), 408 and 431 (request line and
  headers too slow or too large: api/server.py), 413 (body too large), 500 (unexpected, logged), and the statuses
  the domain errors map to (api/errors.py ``DOMAIN``: 403, 404, 409, 410, 422, 503);
* with a bearer token (``require``): 401, 403, 429 (rate limit);
* with parameters or a body: 422; with a body: 400 (not JSON, not UTF-8, too deep, number too long)
  and 415 (not JSON).

A status a route documents itself (``responses=``) is kept as the route wrote it; an error status it
declares without a body is given the problem document as its body.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from api.errors import DOMAIN, PROBLEM
from api.security.acting import document_acting

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document; some problems add members (reason, errors, ids).",
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance", "request_id"],
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem (its last segment is a slug)."},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request's path."},
        "request_id": {"type": "string", "description": "As the x-request-id header; quote it to the operator."},
        "reason": {"type": "string", "description": "A reason code the caller can act on."},
        "errors": {
            "type": "object",
            "description": "What is wrong, by location (body members, parameters) or field name.",
            "additionalProperties": {"type": "string"},
        },
    },
    "additionalProperties": True,
}
_ALWAYS = {400, 408, 413, 431, 500} | {status for _, status, _, _ in DOMAIN}
_PROTECTED = {401, 403, 429}
_WITH_BODY = {400, 413, 415, 422}
_FASTAPI_ONLY = ("HTTPValidationError", "ValidationError")


def _statuses(operation: dict[str, Any]) -> set[int]:
    found = set(_ALWAYS)
    if operation.get("security"):
        found |= _PROTECTED
    if operation.get("parameters"):
        found.add(422)
    if "requestBody" in operation:
        found |= _WITH_BODY
    return found


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Describe every error answer of every operation of ``document`` (in place) as a problem."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_ONLY:
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method not in {"get", "put", "post", "delete", "patch", "head", "options"}:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status in sorted(_statuses(operation)):
                declared = responses.get(str(status))
                if declared is None or _is_fastapi_validation(declared):
                    responses[str(status)] = _problem_response(status)
            for code, declared in responses.items():
                if code[0] in "45" and "content" not in declared:  # declared without a body: a problem
                    declared["content"] = _problem_response(int(code))["content"]
    return document


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def install(app: FastAPI) -> None:
    """Have ``app`` serve the document with its problems described (built once, on first request)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_acting(document_problems(generate()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise it
