"""The curl walkthrough printed once the dev stack is up."""

from __future__ import annotations

from mocks.catalog_service.data import IMAGE_UBUNTU_ID, PLAN_BASIC_ID, PLAN_STANDARD_ID

# A valid ed25519 public key for the walkthrough when ~/.ssh has none (its private
# half was thrown away: nobody can log in with it).
DEMO_PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDS7/SJYkaQK8XqWvwZrgUbuJAep4VAJvC+RXgset6e2 demo"
)
HOSTNAME = "demo-1"


def walkthrough(base: str, token: str | None, api_key_line: str, boot_seconds: float) -> str:
    body = (
        f'{{"planId":"{PLAN_BASIC_ID}","imageId":"{IMAGE_UBUNTU_ID}",'
        f'"duration":"MONTHLY","couponCode":"HEMAT20",'
        f'"hostname":"{HOSTNAME}","region":"sgp1","sshKeyIds":["'
        """'"$KEY_ID"'"]}"""
    )
    key_body = """{"name":"my laptop","publicKey":"'"$PUBKEY"'"}"""
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

  # 0. where can the Basic plan go? (DO's regions offering its size, sorted)
  curl -sS "$BASE/api/v1/regions?planId={PLAN_BASIC_ID}" -H "Authorization: Bearer $TOKEN"; echo

  # 1. add your SSH key (yours from ~/.ssh, else a demo key nobody holds the private half of)
  PUBKEY=$(cat ~/.ssh/id_ed25519.pub 2>/dev/null || echo '{DEMO_PUBLIC_KEY}')
  KEY_ID=$(curl -sS -X POST "$BASE/api/v1/ssh-keys" \\
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
    -d '{key_body}' \\
    | tee /dev/stderr | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
  echo; echo "key: $KEY_ID"

  # 2. order a server named {HOSTNAME} in sgp1 with that key: Basic plan, Ubuntu 22.04,
  #    monthly, coupon HEMAT20 (expect finalPrice 72000 and access SSH_KEYS; leave out
  #    sshKeyIds for access PASSWORD: a root password, readable in step 5)
  ORDER_ID=$(curl -sS -X POST "$BASE/api/v1/orders" \\
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
    -d '{body}' \\
    | tee /dev/stderr | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
  echo; echo "order: $ORDER_ID"

  # 3. mark it paid (operator, X-API-Key): PENDING_PAYMENT -> PAID -> PROVISIONING
  curl -sS -X POST "$BASE/api/v1/internal/orders/$ORDER_ID/payment-status" \\
    -H "X-API-Key: $API_KEY" -H 'Content-Type: application/json' -d '{{"status":"PAID"}}'; echo

  # 4. watch it become ACTIVE (the fake droplet boots in {boot_seconds:g} s);
  #    prints: order status, task status, droplet status, public IPv4
  for i in $(seq 60); do
    S=$(curl -sS "$BASE/api/v1/orders/$ORDER_ID" -H "Authorization: Bearer $TOKEN" \\
        | python3 -c "{show}")
    echo "$S"; case "$S" in ACTIVE*|FAILED*) break;; esac; sleep 1
  done

  # 5. how to log in the first time: `ssh root@<ipv4Public>` with your key (a PASSWORD
  #    order shows its password here, for CREDENTIALS_TTL after ACTIVE, then 410)
  curl -sS "$BASE/api/v1/orders/$ORDER_ID/credentials" -H "Authorization: Bearer $TOKEN"; echo

  # 6. reboot the new server (a server action: 202, then PENDING -> IN_PROGRESS -> COMPLETED)
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

  # 7. upgrade to Standard 2GB (more CPU, RAM and disk): the quote, the change, the
  #    payment (ops), then the RESIZE action: shutdown, resize, power on
  curl -sS "$BASE/api/v1/orders/$ORDER_ID/plan-change-quote?planId={PLAN_STANDARD_ID}" \
    -H "Authorization: Bearer $TOKEN"; echo
  CHANGE_ID=$(curl -sS -X POST "$BASE/api/v1/orders/$ORDER_ID/plan-changes" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{{"planId":"{PLAN_STANDARD_ID}"}}' \
    | tee /dev/stderr | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
  echo; echo "plan change: $CHANGE_ID"
  curl -sS -X POST "$BASE/api/v1/internal/plan-changes/$CHANGE_ID/payment-status" \
    -H "X-API-Key: $API_KEY" -H 'Content-Type: application/json' -d '{{"status":"PAID"}}'; echo
  for i in $(seq 60); do
    C=$(curl -sS "$BASE/api/v1/orders/$ORDER_ID/plan-changes" -H "Authorization: Bearer $TOKEN" \
        | python3 -c "import json,sys; c=json.load(sys.stdin)['data'][0]; print(c['status'])")
    echo "$C"; case "$C" in COMPLETED|FAILED) break;; esac; sleep 1
  done

  # the operator's view, with the status history
  curl -sS "$BASE/api/v1/internal/orders/$ORDER_ID" -H "X-API-Key: $API_KEY" | python3 -m json.tool

  # a second DigitalOcean account (the fake's second token): new orders spread over
  # both by room; `free` and `droplets` per account (docs/accounts.md)
  curl -sS -X POST "$BASE/api/v1/internal/do-accounts" -H "X-API-Key: $API_KEY" \
    -H 'Content-Type: application/json' -d '{{"name":"second","token":"fake-do-token-2"}}'; echo
  curl -sS "$BASE/api/v1/internal/do-accounts" -H "X-API-Key: $API_KEY"; echo

API docs: {base}/docs   OpenAPI: {base}/openapi.json   metrics: {base}/metrics
Every event of the order's life is printed by the webhook receiver ([webhooks] lines).
Press Ctrl-C to stop all four."""
