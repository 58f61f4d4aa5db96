"""The browser harness on what every build serves: /docs under its security headers, and nothing
the page loads leaves the service's origin (no CDN, no font service, no telemetry)."""

from __future__ import annotations

from tests.support.browser import Web, serious_violations


def test_docs_page_loads_only_from_its_own_origin_under_the_security_headers(web: Web) -> None:
    response = web.page.goto("/docs")
    assert response is not None and response.status == 200
    web.page.wait_for_load_state("networkidle")
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    # Swagger UI rendered from the vendored files: the API's title is on the page.
    web.page.get_by_text("Citizen Vault").first.wait_for()
    assert len(web.requests) > 1  # the page, its scripts and the OpenAPI document were all recorded
    assert web.foreign_requests() == []
    assert web.console_errors == []  # nothing the CSP refused: no inline script or style on the page
    web.shot("docs")


def test_the_recorder_catches_a_request_to_another_host(web: Web) -> None:
    # The checks above must be able to fail. A page without a CSP that loads from another host is
    # caught (and the request aborted); on the service's pages the CSP refuses it first, visibly.
    web.page.set_content("<img src='http://203.0.113.9:9/pixel.png' alt='x'>")
    assert web.foreign_requests() == ["http://203.0.113.9:9/pixel.png"]
    web.page.goto("/healthz")
    web.page.evaluate("fetch('http://203.0.113.9:9/x').catch(() => null)")
    assert web.foreign_requests() == ["http://203.0.113.9:9/pixel.png"]
    assert any("Content Security Policy" in text for text in web.console_errors), web.console_errors


def test_axe_reports_serious_violations_of_a_broken_page(web: Web) -> None:
    # serious_violations() must be able to fail too: an image without alt text on a page without a title.
    web.page.set_content("<html><body><img src='data:image/png;base64,'></body></html>")
    found = {v["id"] for v in serious_violations(web.page)}
    assert {"image-alt", "document-title", "html-has-lang"} <= found
