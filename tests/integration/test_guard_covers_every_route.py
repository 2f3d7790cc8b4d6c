"""The request guard names routes to check, so a new route must not slip past it: each is classified."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from token_url.request_guard import BROWSER_STATE_ROUTES, CROSS_SITE_ROUTES, IAM_ROUTES, JSON_BODY_ROUTES


def operations(app_module: ModuleType) -> dict[tuple[str, str], dict[str, Any]]:
    """(METHOD, path) → its OpenAPI operation, as the resolver declares its routes."""
    schema = app_module.app.get_openapi_schema().model_dump(by_alias=True, exclude_none=True)
    return {
        (method.upper(), path): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }


def test_every_state_changing_route_is_guarded_as_a_page_a_server_or_the_cross_site_token_post(
    app_module: ModuleType,
) -> None:
    changing = {route for route in operations(app_module) if route[0] != "GET"}
    assert changing  # the resolver's routes were found
    unclassified = changing - BROWSER_STATE_ROUTES - IAM_ROUTES - CROSS_SITE_ROUTES
    assert not unclassified, f"add these routes to a set in request_guard.py: {sorted(unclassified)}"
    assert not BROWSER_STATE_ROUTES & IAM_ROUTES
    assert not (BROWSER_STATE_ROUTES | IAM_ROUTES) & CROSS_SITE_ROUTES


def test_every_route_with_a_json_body_gets_the_json_checks(app_module: ModuleType) -> None:
    with_json = {
        route
        for route, operation in operations(app_module).items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    }
    assert with_json
    assert with_json <= JSON_BODY_ROUTES


def test_the_guard_names_no_route_the_resolver_does_not_serve(app_module: ModuleType) -> None:
    served = set(operations(app_module))
    assert served >= (BROWSER_STATE_ROUTES | IAM_ROUTES | CROSS_SITE_ROUTES | JSON_BODY_ROUTES)
