"""An Open311 GeoReport v2 client as off-the-shelf 311 apps speak it (form-encoded POSTs with the
standard field names, ``attribute[code]`` answers, ``.json`` paths), and the spec's JSON Schemas
(tests/support/vendor/open311, open311/schema-validation) as the oracle for every answer.

The people, numbers and addresses used with it are invented.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema_rs
import pytest
from httpx import Response
from sqlalchemy import func, select

from tests.support.api_world import World, open_world
from vault import open311keys
from vault.audit.log import Actor
from vault.interactions.tables import interactions

SCHEMAS = Path(__file__).parent / "vendor" / "open311" / "georeport-v2"
BASE_URI = "https://open311.example/georeport-v2/"
FORM = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Open311-Mobile/2.4 (test)"}
OPERATOR = Actor("operator:test", "operator", "vault")
# The answer to POST requests.json and to GET tokens/{token}.json: swagger.json's RequestResponse
# and TokenResponse (the repository has no separate schema file for them).
RESPONSE_MEMBERS = {"service_request_id", "token", "service_notice", "account_id"}
TOKEN_MEMBERS = {"service_request_id", "token"}
Pairs = Sequence[tuple[str, str]]
POTHOLE = {
    "service_code": "pothole",
    "lat": "45.021387",
    "long": "7.101249",
    "description": "A deep hole next to the bus stop.",
    "attribute[size]": "large",
}


def _validator(name: str) -> jsonschema_rs.Validator:
    resources = [(BASE_URI + p.name, json.loads(p.read_text())) for p in sorted(SCHEMAS.glob("*.json"))]
    schema = {**json.loads((SCHEMAS / name).read_text()), "$id": BASE_URI + name}
    return jsonschema_rs.Draft7Validator(schema, registry=jsonschema_rs.Registry(resources), validate_formats=True)


ORACLE = {name: _validator(name) for name in ("services.json", "service-definition.json", "requests.json")}


def conforms(schema: str, response: Response) -> Any:
    """The JSON body of a 200 answer, after checking it against the spec's schema ``schema``."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    errors = [e.message for e in ORACLE[schema].iter_errors(body)]
    assert not errors, errors
    return body


def is_error_list(response: Response, status: int) -> str:
    """The description of a GeoReport error answer with this status (checking its shape); returns it."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers["content-type"]
    body = response.json()
    assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"code", "description"}, body
    assert body[0]["code"] == status and isinstance(body[0]["description"], str) and body[0]["description"]
    return str(body[0]["description"])


@dataclass
class Open311World:
    """An HTTP world (tests/support/api_world.py) with an application key issued."""

    w: World
    api_key: str
    key_id: str

    def post(self, pairs: Pairs, headers: dict[str, str] | None = None, fmt: str = "json") -> Response:
        """POST requests.{fmt} with ``pairs`` form-encoded in the given order, as a 311 app sends them."""
        response: Response = self.w.client.post(
            f"/open311/v2/requests.{fmt}", content=urlencode(list(pairs)), headers={**FORM, **(headers or {})}
        )
        return response

    def form(self, changes: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
        """A valid pothole report with this app's key, ``changes`` applied (the pothole's question
        is left out for another service unless given)."""
        fields = {"api_key": self.api_key, **POTHOLE, **(changes or {})}
        if fields["service_code"] != "pothole" and "attribute[size]" not in (changes or {}):
            del fields["attribute[size]"]
        return list(fields.items())

    def file(self, *extra: tuple[str, str], headers: dict[str, str] | None = None, **fields: str) -> str:
        """File a report (:meth:`form` with ``fields``, then ``extra`` pairs); returns its service_request_id."""
        response = self.post([*self.form(fields), *extra], headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert isinstance(body, list) and len(body) == 1 and set(body[0]) <= RESPONSE_MEMBERS, body
        return str(body[0]["service_request_id"])

    def get(self, path: str, **params: str) -> Response:
        """GET /open311/v2/{path}."""
        response: Response = self.w.client.get(f"/open311/v2/{path}", params=params)
        return response

    def stored(self) -> int:
        """How many interactions the vault holds."""
        with self.w.vault.data_engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(interactions)) or 0)


@contextmanager
def open311_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Open311World]:
    """A fresh vault with the demo registry, served over HTTP, and one Open311 application key."""
    with open_world(tmp_path, monkeypatch) as w:
        issued = open311keys.for_vault(w.vault).create("Test 311 app", OPERATOR)
        yield Open311World(w, issued.api_key, issued.app.key_id)
