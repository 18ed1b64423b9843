"""Property-based run over the OpenAPI document (schemathesis): whatever it sends to
any operation, the API never answers 500 and its answers match the document.

Schemathesis' own pytest plugin does not run under pytest 9, so each operation's
hypothesis strategy is driven by a plain `@given` here.
"""

from __future__ import annotations

import pytest
import schemathesis
from conftest import TEST_SECRET, settings_with
from hypothesis import HealthCheck, given, settings

from digest import store
from digest.models import Subscriber, utcnow
from digest.tokens import make_token
from digest.web import create_app

EXAMPLES_PER_OPERATION = 15
# The profile language, time zones and address syntax are checked beyond what a JSON
# schema can say, so schema-valid input may well get a (documented) 400.
SEMANTIC_CHECKS = [schemathesis.checks.positive_data_acceptance]


@pytest.fixture
def web_schema(settings, engine, tmp_path):
    now = utcnow()
    store.add_subscriber(
        engine,
        Subscriber(email="ada@example.org", keywords="diffusion", created_at=now, confirmed_at=now),
    )
    # Mails go to files: the run may sign up many generated addresses.
    app_settings = settings_with(
        settings, transport="file", outbox_dir=tmp_path / "outbox", admin_token="admin-token"
    )
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings, engine))


def checker(operation, valid_token: str, seen: dict[str, list[int]]):
    """One hypothesis test for one operation. Every other example gets a valid link
    token in its path, so the run reaches past the signature check."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        calls = seen.setdefault(operation.label, [])
        if "token" in (case.path_parameters or {}) and len(calls) % 2:
            case.path_parameters["token"] = valid_token
        headers = {"Authorization": "Bearer admin-token"} if "/admin/" in case.path else None
        response = case.call(headers=headers)
        calls.append(response.status_code)
        assert response.status_code < 500, (operation.label, case.body, response.text[:300])
        case.validate_response(response, headers=headers, excluded_checks=SEMANTIC_CHECKS)

    return check


def test_api_never_fails_on_generated_input(web_schema):
    operations = [result.ok() for result in web_schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert "POST /api/subscriptions" in labels and "GET /api/admin/subscribers" in labels
    valid_token = make_token(TEST_SECRET, "manage", "ada@example.org")
    seen: dict[str, list[int]] = {}
    for operation in operations:
        checker(operation, valid_token, seen)()
    assert set(seen) == labels
    assert any(200 <= code < 300 for code in seen["GET /api/manage/{token}"])
    # Generated previews are mostly (documented) 400s: a profile must say something.
    # One that does, checked against the document like the generated ones.
    preview = next(op for op in operations if op.label == "POST /api/preview")
    case = preview.Case(
        body={"keywords": "diffusion", "max_papers": 5}, media_type="application/json"
    )
    response = case.call()
    assert response.status_code == 200, response.text[:300]
    case.validate_response(response, excluded_checks=SEMANTIC_CHECKS)
