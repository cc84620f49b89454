"""Prometheus metrics, exposed at /metrics.

Defined once per process in the default registry; label values are bounded
(route templates, statuses, DO operations), never ids.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "order_service_http_requests_total",
    "HTTP requests by method, route template and status code",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "order_service_http_request_duration_seconds",
    "HTTP request latency by method and route template",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ORDERS_CREATED = Counter("order_service_orders_created_total", "Orders created")
STATUS_TRANSITIONS = Counter(
    "order_service_status_transitions_total",
    "Order status transitions",
    ["from_status", "to_status"],
)
PROVISIONING_DURATION = Histogram(
    "order_service_provisioning_duration_seconds",
    "From droplet request to the task's end, by outcome",
    ["outcome"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200),
)
TASKS_IN_FLIGHT = Gauge(
    "order_service_provisioning_tasks_in_flight",
    "Provisioning tasks this process holds a lease on",
)
DO_REQUESTS = Counter(
    "order_service_digitalocean_requests_total",
    "Requests sent to DigitalOcean by account, operation and status (0 = no answer)",
    ["account", "operation", "status"],
)
DO_RATE_LIMITED = Counter(
    "order_service_digitalocean_rate_limited_total",
    "429 answers received from DigitalOcean, by account",
    ["account"],
)


def do_response_recorder(account: str) -> Callable[[str, int], None]:
    """The DO client's on_response hook for one account (names are few: ops make them)."""

    def record(operation: str, status: int) -> None:
        DO_REQUESTS.labels(account, operation, str(status)).inc()
        if status == 429:
            DO_RATE_LIMITED.labels(account).inc()

    return record


# --- DO accounts (SPEC section 13), refreshed by the account checker ---
DO_ACCOUNT_DROPLETS = Gauge(
    "order_service_do_account_droplets", "Live droplets of our orders, by account", ["account"]
)
DO_ACCOUNT_CREATING = Gauge(
    "order_service_do_account_creating", "Droplet creates in flight, by account", ["account"]
)
DO_ACCOUNT_FREE = Gauge(
    "order_service_do_account_free",
    "Slots a new droplet can take (dropletLimit - reserve - droplets - creating), by account",
    ["account"],
)
DO_ACCOUNT_HEALTHY = Gauge(
    "order_service_do_account_healthy",
    "1 when the account's last check or call passed, 0 when UNHEALTHY or unknown",
    ["account"],
)


# --- webhooks (SPEC section 11) ---
WEBHOOK_DELIVERIES = Counter(
    "order_service_webhook_deliveries_total",
    "Webhook deliveries that ended, by outcome (delivered, failed)",
    ["outcome"],
)
WEBHOOK_ATTEMPTS = Counter(
    "order_service_webhook_attempts_total",
    "Webhook delivery attempts by result (2xx, 3xx, 4xx, 5xx, timeout, error)",
    ["result"],
)
WEBHOOK_LATENCY = Histogram(
    "order_service_webhook_event_to_delivery_seconds",
    "From an event's creation to its successful delivery",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 36000),
)
WEBHOOK_DELIVERIES_PENDING = Gauge(
    "order_service_webhook_deliveries_pending",
    "Webhook deliveries not finished yet (all processes; refreshed every few seconds)",
)
WEBHOOK_IN_FLIGHT = Gauge(
    "order_service_webhook_deliveries_in_flight",
    "Webhook deliveries this process is sending right now",
)


# --- the lifecycle scan (SPEC section 9) ---
LIFECYCLE_CHANGES = Counter(
    "order_service_lifecycle_changes_total",
    "Orders changed by the lifecycle scan, by rule "
    "(unpaid_canceled, reminded, period_ended, suspended, terminated, failed)",
    ["rule"],
)
LIFECYCLE_SCAN_DURATION = Histogram(
    "order_service_lifecycle_scan_duration_seconds",
    "One lifecycle scan of this process (all five rules)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
