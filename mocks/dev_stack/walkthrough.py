"""The curl walkthrough printed once the dev stack is up."""

from __future__ import annotations

from mocks.catalog_service.data import IMAGE_UBUNTU_ID, PLAN_BASIC_ID


def walkthrough(base: str, token: str | None, api_key_line: str, boot_seconds: float) -> str:
    body = (
        f'{{"planId":"{PLAN_BASIC_ID}","imageId":"{IMAGE_UBUNTU_ID}",'
        f'"duration":"MONTHLY","couponCode":"HEMAT20"}}'
    )
    token_line = (
        f"TOKEN={token}   # order-service token --sub demo-user --ttl 86400"
        if token
        else "TOKEN=...   # `order-service token` failed, see above (RS256 needs --private-key)"
    )
    show = (
        "import json,sys; o=json.load(sys.stdin)['data']; t=o['provisioningTask'] or {}; "
        "print(o['status'], t.get('status'), t.get('dropletStatus'), t.get('ipv4Public'))"
    )
    show_action = (
        "import json,sys; a=json.load(sys.stdin)['data']; "
        "print(a['status'], a['type'], a['errorCode'] or '')"
    )
    return f"""\
Walk through an order (paste into another shell; needs curl and python3):

  BASE={base}
  {token_line}
  {api_key_line}

  # 1. create an order: Basic plan, Ubuntu 22.04, monthly, coupon HEMAT20
  #    (expect basePrice 100000, promoDiscount 10000, couponDiscount 18000, finalPrice 72000)
  ORDER_ID=$(curl -sS -X POST "$BASE/api/v1/orders" \\
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
    -d '{body}' \\
    | tee /dev/stderr | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
  echo; echo "order: $ORDER_ID"

  # 2. mark it paid (operator, X-API-Key): PENDING_PAYMENT -> PAID -> PROVISIONING
  curl -sS -X POST "$BASE/api/v1/internal/orders/$ORDER_ID/payment-status" \\
    -H "X-API-Key: $API_KEY" -H 'Content-Type: application/json' -d '{{"status":"PAID"}}'; echo

  # 3. watch it become ACTIVE (the fake droplet boots in {boot_seconds:g} s);
  #    prints: order status, task status, droplet status, public IPv4
  for i in $(seq 60); do
    S=$(curl -sS "$BASE/api/v1/orders/$ORDER_ID" -H "Authorization: Bearer $TOKEN" \\
        | python3 -c "{show}")
    echo "$S"; case "$S" in ACTIVE*|FAILED*) break;; esac; sleep 1
  done

  # 4. reboot the new server (a server action: 202, then PENDING -> IN_PROGRESS -> COMPLETED)
  ACTION_ID=$(curl -sS -X POST "$BASE/api/v1/orders/$ORDER_ID/actions" \\
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
    -d '{{"type":"REBOOT"}}' \\
    | tee /dev/stderr | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
  echo; echo "action: $ACTION_ID"
  for i in $(seq 60); do
    A=$(curl -sS "$BASE/api/v1/orders/$ORDER_ID/actions/$ACTION_ID" \\
        -H "Authorization: Bearer $TOKEN" | python3 -c "{show_action}")
    echo "$A"; case "$A" in COMPLETED*|FAILED*) break;; esac; sleep 1
  done

  # the operator's view, with the status history
  curl -sS "$BASE/api/v1/internal/orders/$ORDER_ID" -H "X-API-Key: $API_KEY" | python3 -m json.tool

API docs: {base}/docs   OpenAPI: {base}/openapi.json   metrics: {base}/metrics
Every event of the order's life is printed by the webhook receiver ([webhooks] lines).
Press Ctrl-C to stop all four."""
