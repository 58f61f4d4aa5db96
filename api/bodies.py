"""Request bodies: read only once the caller is authenticated and allowed, then parsed with limits
(issue 19, finding 9).

FastAPI reads and parses a route's JSON body before it solves the route's dependencies
(fastapi/routing.py, ``get_request_handler``), so without this anyone could make the vault parse a
megabyte of JSON without a token. ``AuthFirstRoute`` runs the route's authorisation dependency
(the one ``api.security.auth.require`` builds, marked ``authz``) first, then reads the body and
parses it here, with limits, and hands the parsed value to FastAPI (which then neither reads nor
parses it again; the dependency returns the principal it already found, ``auth.AUTHORISED``).

Each refusal has its own problem document: a media type other than JSON (415), bytes that are
not UTF-8, nesting deeper than MAX_DEPTH, a number longer than MAX_NUMBER_CHARS or out of range,
and anything else that is not JSON (400). The size limit is the app's (api/middleware.py, 413).
"""

from __future__ import annotations

import email.message
import json
import math
import re
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import solve_dependencies
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from api.errors import ApiProblem
from api.security.auth import AUTHORISED

MAX_DEPTH = 32  # the deepest body the schemas accept is 3 levels; Python's parser recurses per level
MAX_NUMBER_CHARS = 40  # a 64-bit integer is at most 20 characters; Python refuses 4,300 digits with a crash
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # a JSON string, escapes included
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class _NumberTooLong(ValueError):
    pass


class _NumberOutOfRange(ValueError):
    pass


def _bad(slug: str, title: str, detail: str, status: int = 400) -> ApiProblem:
    return ApiProblem(status, slug, title, detail)


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects, outside strings (an estimate for malformed JSON,
    which the parser refuses anyway)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    for bracket in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEPTH:
                break
    return deepest


def _integer(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _NumberTooLong
    return int(literal)


def _float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _NumberTooLong
    value = float(literal)
    if not math.isfinite(value):  # 1e999 parses to infinity, which no schema means
        raise _NumberOutOfRange
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python accepts NaN and Infinity; RFC 8259 does not


def parse_json(raw: bytes) -> Any:
    """A JSON body as Python values; ApiProblem (400) naming what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("invalid-utf8", "The body is not valid UTF-8", "send JSON encoded as UTF-8") from None
    if _depth(text) > MAX_DEPTH:
        raise _bad("too-deep", "The body is nested too deeply", f"at most {MAX_DEPTH} levels of arrays and objects")
    try:
        return json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except _NumberTooLong:
        detail = f"numbers of at most {MAX_NUMBER_CHARS} characters"
        raise _bad("number-too-long", "A number in the body is too long", detail) from None
    except _NumberOutOfRange:
        raise _bad("number-out-of-range", "A number in the body is out of range", "finite numbers only") from None
    except (ValueError, RecursionError):
        raise _bad("malformed-json", "The body is not valid JSON", "send a JSON object") from None


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def _gate(dependant: Dependant) -> Dependant | None:
    """The route's authorisation dependency (``require``), wherever it sits among its dependencies."""
    for sub in dependant.dependencies:
        if getattr(sub.call, "authz", None) is not None:
            return sub
        found = _gate(sub)
        if found is not None:
            return found
    return None


async def _authorise(request: Request, gate: Dependant) -> None:
    """Run the authorisation dependency alone (it raises ApiProblem on refusal) and leave its
    principal where the dependency finds it when FastAPI solves the route's dependencies."""
    async with AsyncExitStack() as stack:
        solved = await solve_dependencies(
            request=request, dependant=Dependant(dependencies=[gate]), async_exit_stack=stack, embed_body_fields=False
        )
    if solved.errors:  # the dependency takes only the request and its bearer header: not expected
        raise _bad("bad-request", "Bad request", "the request could not be authenticated")
    assert gate.name is not None
    request.scope.setdefault("state", {})[AUTHORISED] = (gate.call, solved.values[gate.name])


class AuthFirstRoute(APIRoute):
    """An APIRoute that authorises before it reads a JSON body, and parses it with limits."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, preceded by authorisation and the limited parse for body routes."""
        handler = super().get_route_handler()
        if self.body_field is None or isinstance(self.body_field.field_info, params.Form):
            return handler
        gate = _gate(self.dependant)

        async def authorised_then_parsed(request: Request) -> Response:
            if gate is not None:
                await _authorise(request, gate)
            raw = await request.body()
            if raw:
                if not _is_json(request.headers.get("content-type")):
                    raise _bad("unsupported-media-type", "Send application/json", "a JSON body", 415)
                # Starlette's Request.json() returns this cached value: FastAPI does not parse again.
                request._json = parse_json(raw)
            return await handler(request)

        return authorised_then_parsed
