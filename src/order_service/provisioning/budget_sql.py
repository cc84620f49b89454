"""The statements of the shared DigitalOcean budgets (PostgreSQL only), one per account.

See :mod:`order_service.provisioning.shared_budget` for the design. Times are
the database's (``clock_timestamp()``), never a process's wall clock. Every
statement names its account (``:account``): accounts never wait on each other.
"""

from __future__ import annotations

from sqlalchemy import text


def _wait_until_room(span: str, used: str, limit: str, which: str) -> str:
    """Seconds until the grants of `which` in a window of `span` drop one below `limit`:
    the expiry (plus the span) of the grant whose running total first reaches the excess."""
    # Every part is a constant of this module (column names, parameter names): no input.
    return f"""(
               SELECT extract(epoch FROM x.expires_at
                                          + make_interval(secs => {span}) - clock.now)
               FROM (SELECT g.expires_at,
                            sum(g.count) OVER (ORDER BY g.expires_at, g.id) AS cum
                     FROM do_budget_grants g
                     WHERE g.account_id = :account AND {which}
                       AND g.expires_at > clock.now - make_interval(secs => {span})) x
               WHERE x.cum >= {used} + 1 - {limit}
               ORDER BY x.expires_at LIMIT 1)"""  # noqa: S608


#: Pauses are announced on this channel; the payload is "<account id> <seconds left>".
NOTIFY_CHANNEL = "order_service_do_budget"

# Closes finished slices (their count drops to what was sent, their expiry to
# the last send) and takes the row lock every grant is made under.
LOCK_SQL = text(
    """
    WITH closed AS (
        UPDATE do_budget_grants AS g
        SET count = least(g.count, c.used),
            expires_at = least(g.expires_at, g.granted_at + make_interval(secs => c.last_s))
        FROM unnest(CAST(:ids AS bigint[]), CAST(:used AS integer[]),
                    CAST(:last_s AS double precision[])) AS c(id, used, last_s)
        WHERE g.id = c.id
        RETURNING g.id
    )
    SELECT 1 FROM do_budget WHERE account_id = :account FOR UPDATE
    """
)

CREATE_ROW_SQL = text(
    "INSERT INTO do_budget (account_id) VALUES (:account) ON CONFLICT (account_id) DO NOTHING"
)

_MINUTE_WAIT = _wait_until_room(":minute_span", "w.minute_used", ":per_minute", "TRUE")
_HOUR_WAIT = _wait_until_room(":hour_span", "w.hour_used", ":per_hour", "TRUE")
_BULK_MINUTE_WAIT = _wait_until_room(
    ":minute_span", "w.bulk_minute_used", ":bulk_per_minute", "g.bulk"
)
_BULK_HOUR_WAIT = _wait_until_room(":hour_span", "w.bulk_hour_used", ":bulk_per_hour", "g.bulk")

# Runs under the row lock, in a new snapshot (READ COMMITTED), so it sees every
# grant committed by the previous holders of the lock. A bulk grant (creates,
# actions, deletes) is also held to `bulk_per_minute`/`bulk_per_hour`: the
# follow-ups' reserve is never granted to bulk requests.
GRANT_SQL = text(
    # The waits are this module's constants (above), not input.
    f"""
    WITH clock AS (SELECT clock_timestamp() AS now),
    windows AS (
        SELECT
            coalesce(sum(g.count) FILTER (
                WHERE g.expires_at > clock.now - make_interval(secs => :minute_span)), 0)
                AS minute_used,
            coalesce(sum(g.count) FILTER (
                WHERE g.expires_at > clock.now - make_interval(secs => :hour_span)), 0)
                AS hour_used,
            coalesce(sum(g.count) FILTER (
                WHERE g.bulk AND g.expires_at > clock.now - make_interval(secs => :minute_span)),
                0) AS bulk_minute_used,
            coalesce(sum(g.count) FILTER (
                WHERE g.bulk AND g.expires_at > clock.now - make_interval(secs => :hour_span)),
                0) AS bulk_hour_used
        FROM clock LEFT JOIN do_budget_grants g
            ON g.account_id = :account
           AND g.expires_at > clock.now - make_interval(secs => :hour_span)
        GROUP BY clock.now
    ),
    decision AS (
        SELECT CASE WHEN b.paused_until > clock.now THEN 0
                    ELSE greatest(0, least(
                        :want, :per_minute - w.minute_used, :per_hour - w.hour_used,
                        CASE WHEN :bulk THEN least(:bulk_per_minute - w.bulk_minute_used,
                                                   :bulk_per_hour - w.bulk_hour_used)
                             ELSE :want END)) END AS n,
               coalesce(extract(epoch FROM b.paused_until - clock.now), 0) AS paused_s
        FROM do_budget b, clock, windows w WHERE b.account_id = :account
    ),
    inserted AS (
        INSERT INTO do_budget_grants (account_id, owner, granted_at, expires_at, count, bulk)
        SELECT :account, :owner, clock.now, clock.now + make_interval(secs => :ttl), d.n, :bulk
        FROM decision d, clock WHERE d.n > 0
        RETURNING id
    ),
    purged AS (
        DELETE FROM do_budget_grants g USING clock
        WHERE g.account_id = :account
          AND g.expires_at < clock.now - make_interval(secs => :purge_after)
    )
    SELECT (SELECT id FROM inserted) AS grant_id, d.n, d.paused_s,
           w.minute_used, w.hour_used,
           CASE WHEN d.n = 0 THEN greatest(
               CASE WHEN w.minute_used >= :per_minute
                    THEN {_MINUTE_WAIT} END,
               CASE WHEN :bulk AND w.bulk_minute_used >= :bulk_per_minute
                    THEN {_BULK_MINUTE_WAIT} END)
           END AS minute_wait_s,
           CASE WHEN d.n = 0 THEN greatest(
               CASE WHEN w.hour_used >= :per_hour
                    THEN {_HOUR_WAIT} END,
               CASE WHEN :bulk AND w.bulk_hour_used >= :bulk_per_hour
                    THEN {_BULK_HOUR_WAIT} END)
           END AS hour_wait_s
    FROM decision d, windows w, clock
    """  # noqa: S608
)

CLOSE_SQL = text(
    """
    UPDATE do_budget_grants
    SET count = least(count, :used),
        expires_at = least(expires_at, granted_at + make_interval(secs => :last_s))
    WHERE id = :id
    """
)

PAUSE_SQL = text(
    """
    WITH paused AS (
        INSERT INTO do_budget (account_id, paused_until)
        VALUES (:account, clock_timestamp() + make_interval(secs => :seconds))
        ON CONFLICT (account_id) DO UPDATE
        SET paused_until = greatest(do_budget.paused_until, excluded.paused_until)
        RETURNING extract(epoch FROM paused_until - clock_timestamp()) AS left_s
    )
    SELECT pg_notify(:channel, CAST(:account_text AS text) || ' ' || CAST(left_s AS text))
    FROM paused
    """
)
