"""Open311 answers in JSON or XML, and every refusal under /open311/ as GeoReport's error list.

Errors: the app's handlers (api/errors.py) decide the status and audit refusals as for any route;
this module only renders them, through the ``problem_page`` hook the pages use: under ``/open311/``
a problem document becomes ``[{"code": 400, "description": "..."}]`` (or ``<errors>`` in XML for a
``.xml`` path). A 422 becomes a 400, the status GeoReport v2 clients expect for bad input.

XML is only written here, never read: ElementTree escapes every text, and nothing parses XML input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree import ElementTree as ET  # building documents only: nothing here parses XML

from starlette.requests import Request
from starlette.responses import Response

from api.errors import ProblemPage
from api.open311_translate import open311_field

PREFIX = "/open311/"
JSON = "application/json; charset=utf-8"
XML = "application/xml; charset=utf-8"
FORMATS = ("json", "xml")
# The element that wraps each member of a list, by the list's element name (GeoReport v2's XML).
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
}


def answer(data: Any, fmt: str, root: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """``data`` as JSON, or as XML under element ``root`` (a list's members as ITEM_TAGS says)."""
    if fmt == "xml":
        body = ET.tostring(_element(root, data), encoding="utf-8", xml_declaration=True)
        return Response(body, status, headers=dict(headers or {}), media_type=XML)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Response(text.encode(), status, headers=dict(headers or {}), media_type=JSON)


def _element(tag: str, value: Any) -> ET.Element:
    node = ET.Element(tag)
    if isinstance(value, Mapping):
        for key, member in value.items():
            node.append(_element(str(key), member))
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for member in value:
            node.append(_element(ITEM_TAGS.get(tag, "item"), member))
    elif isinstance(value, bool):
        node.text = "true" if value else "false"
    elif value is not None:
        node.text = str(value)
    return node


def fmt_of(path: str) -> str:
    """The answer format a path asks for (``.xml`` or else JSON)."""
    return "xml" if path.endswith(".xml") else "json"


def error_list(status: int, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """GeoReport's error list for a problem document: its reason, detail and field problems in words."""
    detail = str(body.get("detail") or body.get("title") or "error")
    reason = body.get("reason")
    description = detail if not isinstance(reason, str) or detail.startswith(reason) else f"{reason}: {detail}"
    problems = body.get("errors")
    if isinstance(problems, Mapping) and problems:
        description += " (" + "; ".join(f"{open311_field(str(k))}: {v}" for k, v in sorted(problems.items())) + ")"
    if status >= 500:
        description = f"{detail} (request id {body.get('request_id')})"
    return [{"code": status, "description": description[:1000]}]


def errors_hook(previous: ProblemPage | None) -> ProblemPage:
    """The problem renderer with /open311/ paths answered as GeoReport error lists (``previous`` for the rest)."""

    def render(request: Request, body: dict[str, Any], headers: dict[str, str] | None) -> Response | None:
        path = request.url.path
        if not path.startswith(PREFIX):
            return previous(request, body, headers) if previous is not None else None
        status = int(body.get("status", 500))
        status = 400 if status == 422 else status
        return answer(error_list(status, body), fmt_of(path), "errors", status, headers)

    return render
