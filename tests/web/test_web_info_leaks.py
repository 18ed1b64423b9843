"""Issue 16, item 11: the admin routes are not advertised while the admin API is off,
a signed view link with an impossible id is a 404 page (not a 500), and HEAD on the
pages and /healthz answers like GET without a body."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import settings_with
from starlette.testclient import TestClient

from digest.config import Settings
from digest.tokens import make_token
from digest.web.app import create_app


def client_for(settings: Settings, engine) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings, engine), base_url=settings.base_url, raise_server_exceptions=False
    ) as client:
        yield client


@pytest.fixture
def client(settings, engine) -> Iterator[TestClient]:
    yield from client_for(settings, engine)


def admin_paths(client: TestClient) -> list[str]:
    return [p for p in client.get("/openapi.json").json()["paths"] if p.startswith("/api/admin")]


def test_openapi_lists_no_admin_routes_while_the_admin_api_is_off(client):
    assert admin_paths(client) == []
    assert "/api/subscriptions" in client.get("/openapi.json").json()["paths"]
    answer = client.get("/api/admin/subscribers")
    assert answer.status_code == 404  # and the routes themselves still say so


def test_openapi_lists_the_admin_routes_once_a_token_is_set(settings, engine):
    for client in client_for(settings_with(settings, admin_token="admin-token"), engine):
        assert "/api/admin/subscribers" in admin_paths(client)


@pytest.mark.parametrize(
    "payload", [f"{2**63}:2026-01-01", f"{2**31}:2026-01-01", "9" * 40 + ":2026-01-01"]
)
def test_a_signed_view_link_with_an_impossible_id_is_a_404_page(client, settings, payload):
    answer = client.get(f"/view/{make_token(settings.secret_key, 'view', payload)}")
    assert answer.status_code == 404
    assert "text/html" in answer.headers["content-type"]
    assert "Nothing at this link" in answer.text


@pytest.mark.parametrize("path", ["/", "/healthz"])
def test_head_answers_like_get_without_a_body(client, path):
    got = client.get(path)
    head = client.head(path)
    assert got.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert "content-security-policy" in head.headers


def test_head_on_a_link_page_answers_like_get(client, settings):
    token = make_token(settings.secret_key, "unsubscribe", "ada@example.org")
    assert client.head(f"/unsubscribe/{token}").status_code == 200
    assert client.head("/no-such-page").status_code == 404


def concrete_path(route_path: str, settings: Settings, subscriber_id: int) -> str:
    """A route's path with each parameter filled in with something that resolves."""
    manage = make_token(settings.secret_key, "manage", ["ada@example.org", subscriber_id])
    values = {
        "{token}": manage,
        "{edition}": "2026-01-01",
    }
    for name, value in values.items():
        route_path = route_path.replace(name, value)
    assert "{" not in route_path, f"no value for a parameter of {route_path}"
    return route_path


def every_route(routes: list) -> Iterator:
    """The app's routes, those of included routers too (FastAPI keeps an included
    router as one entry holding the original router)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is None:
            yield route
        else:
            yield from every_route(inner.routes)


def test_head_answers_like_get_on_every_get_route(settings, engine):
    """Every GET route, the JSON API included (`HEAD /api/topics` was a 405)."""
    from fastapi.routing import APIRoute

    from digest import store
    from digest.models import Subscriber, utcnow

    ada = store.add_subscriber(
        engine, Subscriber(email="ada@example.org", keywords="diffusion", confirmed_at=utcnow())
    )
    admin = settings_with(settings, admin_token="admin-token")
    app = create_app(admin, engine)
    routes = [r for r in every_route(app.routes) if isinstance(r, APIRoute) and "GET" in r.methods]
    assert {"/api/topics", "/api/manage/{token}", "/metrics", "/"} <= {r.path for r in routes}
    auth = {"Authorization": "Bearer admin-token"}
    with TestClient(app, base_url=admin.base_url, raise_server_exceptions=False) as client:
        for route in routes:
            path = concrete_path(route.path, admin, ada.id)
            got = client.get(path, headers=auth)
            head = client.head(path, headers=auth)
            assert head.status_code == got.status_code != 405, (route.path, head.status_code)
            assert head.content == b"", route.path
            assert head.headers.get("content-type") == got.headers.get("content-type")
        # a route without GET still says which methods it takes
        assert client.head("/api/preview").status_code == 405
