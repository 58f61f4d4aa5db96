"""Bad input, bad keys, refusals and floods on /open311/v2/: each answered in GeoReport's error list
with the right status and a precise description, never a 500, and nothing written (issue 15)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from api.security.limits import RateLimiter
from tests.support.open311_client import POTHOLE, Open311World, is_error_list
from vault import open311keys
from vault.audit.log import Actor


@pytest.mark.parametrize(
    ("changes", "status", "says"),
    [
        ({"service_code": "no-such-service"}, 400, "unknown-service"),
        ({"service_code": ""}, 400, "service_code is required"),
        ({"attribute[size]": ""}, 400, "attribute[size]: required"),
        ({"attribute[size]": "enormous"}, 400, "attribute[size]: not one of the listed values"),
        ({"attribute[colour]": "red"}, 400, "not a question of this service"),
        ({"lat": "abc"}, 400, "lat must be a number"),
        ({"lat": "91"}, 400, "lat must be a number from -90 to 90"),
        ({"long": "-180.5"}, 400, "long must be a number from -180 to 180"),
        ({"lat": "nan"}, 400, "lat must be a number"),
        ({"long": "inf"}, 400, "long must be a number"),
        ({"lat": "1" * 400}, 400, "lat must be a number"),
        ({"long": ""}, 400, "give both lat and long"),
        ({"lat": "", "long": ""}, 400, "location-required"),
        ({"description": ""}, 400, "description: describe the request"),
        ({"description": "x" * 4001}, 400, "text-too-long"),
        ({"description": "bell\x07"}, 400, "control characters"),
        ({"media_url": "javascript:alert(1)"}, 400, "media_url must be an http(s) URL"),
        ({"address_string": "x" * 301, "lat": "", "long": ""}, 400, "address_string: at most 300 characters"),
        ({"email": "e" * 201}, 400, "email: at most 200 characters"),
        ({"api_key": ""}, 401, "api_key is required"),
        ({"api_key": "o311_0123456789abcdef_" + "A" * 43}, 403, "invalid-api-key"),
        ({"api_key": "guess"}, 403, "invalid-api-key"),
    ],
)
def test_bad_creation_requests_are_refused_precisely_and_write_nothing(
    o: Open311World, changes: dict[str, str], status: int, says: str
) -> None:
    before = o.stored()
    description = is_error_list(o.post(o.form(changes)), status)
    assert says in description, description
    assert o.stored() == before


def test_a_revoked_key_is_refused(o: Open311World) -> None:
    open311keys.for_vault(o.w.vault).revoke(o.key_id, Actor("operator:test", "operator", "vault"))
    refused = o.post(o.form())
    assert "invalid-api-key" in is_error_list(refused, 403)


def test_form_mistakes_are_refused(o: Open311World) -> None:
    twice = o.post([*o.form(), ("service_code", "streetlight")])
    assert "service_code given twice" in is_error_list(twice, 400)
    as_json = o.w.client.post("/open311/v2/requests.json", json=dict(o.form()))
    assert "application/x-www-form-urlencoded" in is_error_list(as_json, 415)
    not_utf8 = o.w.client.post(
        "/open311/v2/requests.json",
        content=b"api_key=\xff\xfe&service_code=pothole",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert "UTF-8" in is_error_list(not_utf8, 400)
    many = o.post([(f"attribute[a{n}][]", "x") for n in range(200)])
    assert "form fields" in is_error_list(many, 400)
    assert o.stored() == 0


def test_unknown_things_are_404_in_open311_form(o: Open311World) -> None:
    assert "no such service request" in is_error_list(o.get("requests/00000000-0000-4000-8000-000000000000.json"), 404)
    assert "no such service request" in is_error_list(o.get("requests/not-a-uuid.json"), 404)
    assert "no such service request" in is_error_list(o.get("tokens/not-a-token.json"), 404)
    assert "no such service" in is_error_list(o.get("services/no-such-service.json"), 404)
    assert ".json or .xml" in is_error_list(o.get("services.yaml"), 404)
    assert ".json or .xml" in is_error_list(o.get("services/pothole"), 404)
    is_error_list(o.get("requests.json", service_code="no-such-service"), 404)
    is_error_list(o.w.client.delete("/open311/v2/requests.json"), 405)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"status": "pending"}, "status: open or closed"),
        ({"page": "0"}, "page: a whole number from 1"),
        ({"page_size": "101"}, "page_size: a whole number from 1 to 100"),
        ({"page_size": "-1"}, "page_size"),
        ({"page_size": "١٢"}, "page_size"),  # Arabic-Indic digits are digits to str.isdigit, not to us
        ({"start_date": "yesterday"}, "start_date: a W3C date-time"),
        ({"end_date": "0001-01-01T00:00:00Z"}, "end_date"),
        ({"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, "start_date is after end_date"),
        ({"service_request_id": ",".join(["x"] * 51)}, "at most 50 ids"),
    ],
)
def test_bad_search_parameters_are_400_with_the_parameter_named(
    o: Open311World, params: dict[str, str], says: str
) -> None:
    assert says in is_error_list(o.get("requests.json", **params), 400)


def test_a_parameter_given_twice_is_refused(o: Open311World) -> None:
    response = o.w.client.get("/open311/v2/requests.json?status=open&status=closed")
    assert "status given twice" in is_error_list(response, 400)


def test_creation_is_limited_per_address_before_the_key_is_checked_and_per_key(o: Open311World) -> None:
    state = o.w.client.app.state.open311  # type: ignore[attr-defined]
    state.per_source = RateLimiter(2)
    for _ in range(2):
        is_error_list(o.post(o.form({"api_key": "guess"})), 403)
    flooded = o.post(o.form())
    is_error_list(flooded, 429)
    assert int(flooded.headers["Retry-After"]) >= 1
    state.per_source = RateLimiter(1000)
    state.per_key = RateLimiter(1)
    o.file()
    assert "retry after" in is_error_list(o.post(o.form()), 429)
    assert o.stored() == 1
    refusals = [e for e in o.w.events(action="open311.create") if e["outcome"] == "denied"]
    reasons = {e["reason"] for e in refusals}
    assert {"invalid-api-key", "open311-source-rate", "open311-key-rate"} <= reasons, reasons


NASTY = ["", " ", "%00", "\x00", "\ud800", "💥" * 300, "a" * 5000, "../../etc/passwd", "<x>&'\"", "1e309", "-0", "[]"]


def test_no_value_in_any_parameter_gets_a_server_error(o: Open311World) -> None:
    sid = o.file()
    paths = ["services.json", "services/pothole.json", f"requests/{sid}.json", f"tokens/{sid}.json", "requests.json"]
    search = ["service_request_id", "service_code", "start_date", "end_date", "status", "page", "page_size", "x"]
    for value in NASTY:
        safe = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        for path in paths:
            for name in search:
                response = o.w.client.get(f"/open311/v2/{path}", params={name: safe})
                assert response.status_code < 500, (path, name, value, response.text)
        for segment in ("services/{}.json", "requests/{}.json", "tokens/{}.json", "services.{}", "requests.{}"):
            response = o.w.client.get("/open311/v2/" + segment.format(quote(safe, safe="")))
            assert response.status_code < 500, (segment, value, response.text)
            if response.status_code >= 400 and response.headers["content-type"].startswith("application/json"):
                is_error_list(response, response.status_code)
        for name in [*POTHOLE, "api_key", "email", "phone", "first_name", "media_url", "attribute[size][]"]:
            response = o.post(o.form({name: safe}))
            assert response.status_code < 500, (name, value, response.text)
            if response.status_code != 200:
                is_error_list(response, response.status_code)
