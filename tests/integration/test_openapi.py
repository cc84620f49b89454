"""The OpenAPI document: committed, complete, and honest about errors and security."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from order_service.openapi_export import openapi_document, serialize
from order_service.orders.schemas import CreateOrderRequest, ErrorEnvelope, PaymentStatusRequest

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
ENVELOPE_REF = "#/components/schemas/ErrorEnvelope"
REGENERATE = (
    "docs/openapi.json is out of date with the code. Regenerate it with `make openapi` "
    "(or `.venv/bin/order-service openapi --output docs/openapi.json`) and commit the result."
)

USER = [{"HTTPBearer": []}]
INTERNAL = [{"APIKeyHeader": []}]

# (method, path) -> (security, the error statuses the operation must declare)
OPERATIONS: dict[tuple[str, str], tuple[list[dict[str, list[str]]] | None, set[str]]] = {
    ("post", "/api/v1/orders"): (USER, {"400", "401", "409", "422", "429", "503"}),
    ("get", "/api/v1/regions"): (USER, {"400", "401", "503"}),
    ("get", "/api/v1/orders/{order_id}/credentials"): (
        USER,
        {"401", "403", "404", "409", "410"},
    ),
    ("get", "/api/v1/orders"): (USER, {"400", "401"}),
    ("get", "/api/v1/orders/{order_id}"): (USER, {"401", "403", "404"}),
    ("post", "/api/v1/orders/{order_id}/cancel"): (USER, {"401", "403", "404", "409"}),
    ("delete", "/api/v1/orders/{order_id}/cancel"): (USER, {"401", "403", "404", "409"}),
    ("get", "/api/v1/orders/{order_id}/renewal-quote"): (
        USER,
        {"400", "401", "403", "404", "409", "503"},
    ),
    ("post", "/api/v1/orders/{order_id}/renewals"): (
        USER,
        {"400", "401", "403", "404", "409", "422", "503"},
    ),
    ("get", "/api/v1/orders/{order_id}/renewals"): (USER, {"400", "401", "403", "404"}),
    ("post", "/api/v1/orders/{order_id}/renewals/{renewal_id}/cancel"): (
        USER,
        {"401", "403", "404", "409"},
    ),
    ("post", "/api/v1/internal/orders/{order_id}/renewals"): (
        INTERNAL,
        {"400", "401", "404", "409", "422", "503"},
    ),
    ("post", "/api/v1/internal/renewals/{renewal_id}/payment-status"): (
        INTERNAL,
        {"400", "401", "404", "409"},
    ),
    ("post", "/api/v1/orders/{order_id}/actions"): (
        USER,
        {"400", "401", "403", "404", "409", "422", "503"},
    ),
    ("get", "/api/v1/orders/{order_id}/actions"): (USER, {"400", "401", "403", "404"}),
    ("get", "/api/v1/orders/{order_id}/actions/{action_id}"): (USER, {"401", "403", "404"}),
    ("post", "/api/v1/internal/orders/{order_id}/actions"): (
        INTERNAL,
        {"400", "401", "404", "409", "422", "503"},
    ),
    ("get", "/api/v1/internal/orders/{order_id}/actions"): (INTERNAL, {"400", "401", "404"}),
    ("get", "/api/v1/internal/orders/{order_id}/actions/{action_id}"): (INTERNAL, {"401", "404"}),
    ("post", "/api/v1/internal/orders/{order_id}/expiry"): (INTERNAL, {"400", "401", "404", "409"}),
    ("post", "/api/v1/internal/orders/{order_id}/suspend"): (INTERNAL, {"401", "404", "409"}),
    ("post", "/api/v1/internal/orders/{order_id}/unsuspend"): (INTERNAL, {"401", "404", "409"}),
    ("post", "/api/v1/internal/orders/{order_id}/terminate"): (INTERNAL, {"401", "404", "409"}),
    ("post", "/api/v1/internal/orders/{order_id}/payment-status"): (
        INTERNAL,
        {"400", "401", "404", "409"},
    ),
    ("get", "/api/v1/internal/orders"): (INTERNAL, {"400", "401"}),
    ("get", "/api/v1/internal/orders/{order_id}"): (INTERNAL, {"401", "404"}),
    ("post", "/api/v1/internal/orders/{order_id}/cancel"): (INTERNAL, {"401", "404", "409"}),
    ("post", "/api/v1/internal/orders/{order_id}/retry-provisioning"): (
        INTERNAL,
        {"401", "404", "409"},
    ),
    ("get", "/api/v1/internal/events"): (INTERNAL, {"400", "401"}),
    ("post", "/api/v1/internal/webhooks"): (INTERNAL, {"400", "401"}),
    ("get", "/api/v1/internal/webhooks"): (INTERNAL, {"400", "401"}),
    ("get", "/api/v1/internal/webhooks/{webhook_id}"): (INTERNAL, {"401", "404"}),
    ("patch", "/api/v1/internal/webhooks/{webhook_id}"): (INTERNAL, {"400", "401", "404"}),
    ("delete", "/api/v1/internal/webhooks/{webhook_id}"): (INTERNAL, {"401", "404"}),
    ("get", "/api/v1/internal/webhooks/{webhook_id}/deliveries"): (
        INTERNAL,
        {"400", "401", "404"},
    ),
    ("post", "/api/v1/internal/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): (
        INTERNAL,
        {"401", "404"},
    ),
    ("post", "/api/v1/internal/webhooks/{webhook_id}/ping"): (INTERNAL, {"401", "404"}),
    ("post", "/api/v1/internal/do-accounts"): (INTERNAL, {"400", "401", "409", "503"}),
    ("get", "/api/v1/internal/do-accounts"): (INTERNAL, {"400", "401"}),
    ("get", "/api/v1/internal/do-accounts/{account_id}"): (INTERNAL, {"401", "404"}),
    ("patch", "/api/v1/internal/do-accounts/{account_id}"): (
        INTERNAL,
        {"400", "401", "404", "409", "503"},
    ),
    ("delete", "/api/v1/internal/do-accounts/{account_id}"): (
        INTERNAL,
        {"400", "401", "404", "409"},
    ),
    ("post", "/api/v1/internal/do-accounts/{account_id}/check"): (INTERNAL, {"401", "404"}),
    ("post", "/api/v1/ssh-keys"): (USER, {"400", "401", "409"}),
    ("get", "/api/v1/ssh-keys"): (USER, {"400", "401"}),
    ("get", "/api/v1/ssh-keys/{ssh_key_id}"): (USER, {"401", "404"}),
    ("delete", "/api/v1/ssh-keys/{ssh_key_id}"): (USER, {"401", "404"}),
    # v1.2: plan changes (SPEC section 15)
    ("get", "/api/v1/orders/{order_id}/plan-change-quote"): (
        USER,
        {"400", "401", "403", "404", "409", "503"},
    ),
    ("post", "/api/v1/orders/{order_id}/plan-changes"): (
        USER,
        {"400", "401", "403", "404", "409", "422", "503"},
    ),
    ("get", "/api/v1/orders/{order_id}/plan-changes"): (USER, {"400", "401", "403", "404"}),
    ("post", "/api/v1/orders/{order_id}/plan-changes/{plan_change_id}/cancel"): (
        USER,
        {"401", "403", "404", "409"},
    ),
    ("get", "/api/v1/internal/orders/{order_id}/plan-change-quote"): (
        INTERNAL,
        {"400", "401", "404", "409", "503"},
    ),
    ("post", "/api/v1/internal/orders/{order_id}/plan-changes"): (
        INTERNAL,
        {"400", "401", "404", "409", "422", "503"},
    ),
    ("get", "/api/v1/internal/orders/{order_id}/plan-changes"): (INTERNAL, {"400", "401", "404"}),
    ("post", "/api/v1/internal/orders/{order_id}/plan-changes/{plan_change_id}/cancel"): (
        INTERNAL,
        {"401", "404", "409"},
    ),
    ("post", "/api/v1/internal/plan-changes/{plan_change_id}/payment-status"): (
        INTERNAL,
        {"400", "401", "404", "409"},
    ),
    ("get", "/api/v1/health"): (None, set()),
    ("get", "/api/v1/health/ready"): (None, {"503"}),
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_committed_document_is_up_to_date(document: dict[str, Any]) -> None:
    assert COMMITTED.exists(), REGENERATE
    assert COMMITTED.read_text() == serialize(document), REGENERATE


async def test_served_document_is_the_committed_one(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert serialize(response.json()) == COMMITTED.read_text(), REGENERATE


async def test_interactive_docs_are_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "/openapi.json" in response.text


def test_every_route_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in operations(document)}
    assert documented == set(OPERATIONS)
    assert "/metrics" not in document["paths"]  # Prometheus text, not part of the API


def test_every_operation_has_a_summary_and_a_tag(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        assert operation.get("summary", "").strip(), f"{method.upper()} {path} has no summary"
        assert operation.get("tags"), f"{method.upper()} {path} has no tag"
        assert operation.get("operationId")
    assert len({op["operationId"] for _, _, op in operations(document)}) == len(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), sorted(OPERATIONS), ids=lambda v: str(v))
def test_operation_declares_its_errors_with_the_envelope(
    document: dict[str, Any], method: str, path: str
) -> None:
    responses = document["paths"][path][method]["responses"]
    _, expected = OPERATIONS[(method, path)]
    assert expected <= set(responses), f"{method.upper()} {path}: {sorted(responses)}"
    for status, response in responses.items():
        if status.startswith("2"):
            continue
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": ENVELOPE_REF}, (method, path, status, schema)
        assert response["description"] and response["description"] != "Validation Error"


def test_no_operation_advertises_fastapis_validation_body(document: dict[str, Any]) -> None:
    # Validation errors are 400 VALIDATION_ERROR in the envelope; FastAPI's
    # default 422 {"detail": [...]} is never sent and must not be documented.
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            assert "HTTPValidationError" not in json.dumps(response), (method, path, status)
    # The only documented 422 is IDEMPOTENCY_KEY_REUSED on the creates that take a key.
    with_422 = {(m, p) for m, p, op in operations(document) if "422" in op["responses"]}
    assert with_422 == {
        ("post", "/api/v1/orders"),
        ("post", "/api/v1/orders/{order_id}/renewals"),
        ("post", "/api/v1/internal/orders/{order_id}/renewals"),
        ("post", "/api/v1/orders/{order_id}/actions"),
        ("post", "/api/v1/internal/orders/{order_id}/actions"),
        ("post", "/api/v1/orders/{order_id}/plan-changes"),
        ("post", "/api/v1/internal/orders/{order_id}/plan-changes"),
    }
    assert (
        "IDEMPOTENCY_KEY_REUSED"
        in document["paths"]["/api/v1/orders"]["post"]["responses"]["422"]["description"]
    )


def test_error_examples_are_valid_envelopes_named_by_their_code(
    document: dict[str, Any],
) -> None:
    seen: set[str] = set()
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith("2"):
                continue
            examples = response["content"]["application/json"].get("examples", {})
            if status != "default":
                assert examples, (method, path, status)
            for name, example in examples.items():
                envelope = ErrorEnvelope.model_validate(example["value"])
                assert envelope.error.code == name
                assert name in response["description"], (method, path, status, name)
                seen.add(name)
    assert seen == {
        "VALIDATION_ERROR",
        "UNAUTHORIZED",
        "ORDER_ACCESS_DENIED",
        "ORDER_NOT_FOUND",
        "INVALID_PLAN",
        "INVALID_IMAGE",
        "INVALID_COUPON",
        "INVALID_DURATION",
        "PAYMENT_STATUS_CONFLICT",
        "DATABASE_UNAVAILABLE",
        "ORDER_STATUS_CONFLICT",
        "IDEMPOTENCY_KEY_REUSED",
        "IDEMPOTENCY_KEY_IN_USE",
        "CATALOG_SERVICE_UNAVAILABLE",
        "NOT_READY",
        "RENEWAL_PENDING",
        "RENEWAL_NOT_FOUND",
        "SERVICE_SUSPENDED",
        "ACTION_IN_PROGRESS",
        "ACTION_NOT_FOUND",
        "TOO_MANY_UNPAID_ORDERS",
        "WEBHOOK_NOT_FOUND",
        "DELIVERY_NOT_FOUND",
        "INVALID_SSH_KEY",
        "SSH_KEY_EXISTS",
        "TOO_MANY_SSH_KEYS",
        "SSH_KEY_NOT_FOUND",
        "INVALID_REGION",
        "CREDENTIALS_EXPIRED",
        "SECRETS_KEY_REQUIRED",
        # v1.2
        "PLAN_CHANGE_NOT_POSSIBLE",
        "PLAN_CHANGE_PENDING",
        "PLAN_CHANGE_NOT_FOUND",
        "DIGITALOCEAN_UNAVAILABLE",
        "DO_ACCOUNT_EXISTS",
        "DO_ACCOUNT_IN_USE",
        "DO_ACCOUNT_NOT_FOUND",
        "INVALID_DO_TOKEN",
    }


def test_create_order_errors_are_grouped_by_status(document: dict[str, Any]) -> None:
    responses = document["paths"]["/api/v1/orders"]["post"]["responses"]

    def codes(status: str) -> set[str]:
        return set(responses[status]["content"]["application/json"]["examples"])

    assert codes("400") == {
        "VALIDATION_ERROR",
        "INVALID_PLAN",
        "INVALID_IMAGE",
        "INVALID_COUPON",
        "INVALID_DURATION",
        "INVALID_REGION",
        "INVALID_SSH_KEY",
    }
    assert codes("409") == {"IDEMPOTENCY_KEY_IN_USE", "SECRETS_KEY_REQUIRED"}
    assert codes("422") == {"IDEMPOTENCY_KEY_REUSED"}
    assert codes("429") == {"TOO_MANY_UNPAID_ORDERS"}
    assert codes("503") == {
        "CATALOG_SERVICE_UNAVAILABLE",
        "DIGITALOCEAN_UNAVAILABLE",
        "DATABASE_UNAVAILABLE",
    }
    payment = document["paths"]["/api/v1/internal/orders/{order_id}/payment-status"]["post"]
    assert set(payment["responses"]["409"]["content"]["application/json"]["examples"]) == {
        "PAYMENT_STATUS_CONFLICT"
    }


def test_security_schemes_exist(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["type"] == "http"
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["APIKeyHeader"]["description"],
    }
    assert "security" not in document  # no global requirement: each operation says its own


@pytest.mark.parametrize(("method", "path"), sorted(OPERATIONS), ids=lambda v: str(v))
def test_security_is_applied_to_the_right_operations(
    document: dict[str, Any], method: str, path: str
) -> None:
    operation = document["paths"][path][method]
    security, _ = OPERATIONS[(method, path)]
    if security is None:
        assert not operation.get("security"), f"{path} must not require credentials"
    else:
        assert operation.get("security") == security
    if path.startswith("/api/v1/internal/"):
        assert security == INTERNAL
    elif path.startswith(("/api/v1/orders", "/api/v1/ssh-keys", "/api/v1/regions")):
        assert security == USER


def test_idempotency_key_header_is_documented(document: dict[str, Any]) -> None:
    parameters = document["paths"]["/api/v1/orders"]["post"]["parameters"]
    (header,) = [p for p in parameters if p["name"] == "Idempotency-Key"]
    assert header["in"] == "header"
    assert header["required"] is False
    string = next(s for s in header["schema"]["anyOf"] if s.get("type") == "string")
    assert string["maxLength"] == 255
    assert string["minLength"] == 1


def test_paging_parameters_are_bounded(document: dict[str, Any]) -> None:
    for path in ("/api/v1/orders", "/api/v1/internal/orders", "/api/v1/ssh-keys"):
        parameters = {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}
        assert parameters["page"]["schema"]["minimum"] == 1
        assert parameters["page"]["schema"]["maximum"] == 2**31 - 1
        assert parameters["limit"]["schema"]["minimum"] == 1
        assert parameters["limit"]["schema"]["maximum"] == 100
        assert parameters["limit"]["schema"]["default"] == 10
    internal = {
        p["name"] for p in document["paths"]["/api/v1/internal/orders"]["get"]["parameters"]
    }
    assert internal == {"page", "limit", "status", "userId"}


def test_request_examples_match_the_models(document: dict[str, Any]) -> None:
    create = document["paths"]["/api/v1/orders"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    assert create["examples"]
    for example in create["examples"].values():
        CreateOrderRequest.model_validate(example["value"])
    payment = document["paths"]["/api/v1/internal/orders/{order_id}/payment-status"]["post"]
    statuses = set()
    for example in payment["requestBody"]["content"]["application/json"]["examples"].values():
        statuses.add(PaymentStatusRequest.model_validate(example["value"]).status)
    assert statuses == {"PAID", "PAYMENT_FAILED"}


def test_ssh_key_examples_match_the_models(document: dict[str, Any]) -> None:
    from order_service.access.keys import parse_public_key
    from order_service.access.schemas import CreateSshKeyRequest, SshKeyOut
    from order_service.orders.schemas import DataEnvelope, ListEnvelope

    paths = document["paths"]
    create = paths["/api/v1/ssh-keys"]["post"]
    examples = create["requestBody"]["content"]["application/json"]["examples"]
    assert examples
    for example in examples.values():
        parse_public_key(CreateSshKeyRequest.model_validate(example["value"]).public_key)
    for path, method, status, model in (
        ("/api/v1/ssh-keys", "post", "201", DataEnvelope[SshKeyOut]),
        ("/api/v1/ssh-keys", "get", "200", ListEnvelope[SshKeyOut]),
        ("/api/v1/ssh-keys/{ssh_key_id}", "get", "200", DataEnvelope[SshKeyOut]),
    ):
        content = paths[path][method]["responses"][status]["content"]["application/json"]
        model.model_validate(content["example"])
