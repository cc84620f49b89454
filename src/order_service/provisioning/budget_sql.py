"""The statements of the shared DigitalOcean budgets (PostgreSQL only), one per account.

See :mod:`order_service.provisioning.shared_budget` for the design. Times are
the database's (``clock_timestamp()``), never a process's wall clock. Every
statement names its account (``:account``): accounts never wait on each other.
"""

from __future__ import annotations

from sqlalchemy import text

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

# Runs under the row lock, in a new snapshot (READ COMMITTED), so it sees every
# grant committed by the previous holders of the lock.
GRANT_SQL = text(
    """
    WITH clock AS (SELECT clock_timestamp() AS now),
    minute AS (
        SELECT coalesce(sum(g.count), 0) AS used FROM do_budget_grants g, clock
        WHERE g.account_id = :account
          AND g.expires_at > clock.now - make_interval(secs => :minute_span)
    ),
    hour AS (
        SELECT coalesce(sum(g.count), 0) AS used FROM do_budget_grants g, clock
        WHERE g.account_id = :account
          AND g.expires_at > clock.now - make_interval(secs => :hour_span)
    ),
    decision AS (
        SELECT CASE WHEN b.paused_until > clock.now THEN 0
                    ELSE greatest(0, least(:want, :per_minute - minute.used,
                                           :per_hour - hour.used)) END AS n,
               coalesce(extract(epoch FROM b.paused_until - clock.now), 0) AS paused_s
        FROM do_budget b, clock, minute, hour WHERE b.account_id = :account
    ),
    inserted AS (
        INSERT INTO do_budget_grants (account_id, owner, granted_at, expires_at, count)
        SELECT :account, :owner, clock.now, clock.now + make_interval(secs => :ttl), d.n
        FROM decision d, clock WHERE d.n > 0
        RETURNING id
    ),
    purged AS (
        DELETE FROM do_budget_grants g USING clock
        WHERE g.account_id = :account
          AND g.expires_at < clock.now - make_interval(secs => :purge_after)
    )
    SELECT (SELECT id FROM inserted) AS grant_id, d.n, d.paused_s,
           minute.used AS minute_used, hour.used AS hour_used,
           CASE WHEN d.n = 0 AND minute.used >= :per_minute THEN (
               SELECT extract(epoch FROM x.expires_at + make_interval(secs => :minute_span)
                              - clock.now)
               FROM (SELECT g.expires_at,
                            sum(g.count) OVER (ORDER BY g.expires_at, g.id) AS cum
                     FROM do_budget_grants g
                     WHERE g.account_id = :account
                       AND g.expires_at > clock.now - make_interval(secs => :minute_span)) x
               WHERE x.cum >= minute.used + 1 - :per_minute
               ORDER BY x.expires_at LIMIT 1)
           END AS minute_wait_s,
           CASE WHEN d.n = 0 AND hour.used >= :per_hour THEN (
               SELECT extract(epoch FROM x.expires_at + make_interval(secs => :hour_span)
                              - clock.now)
               FROM (SELECT g.expires_at,
                            sum(g.count) OVER (ORDER BY g.expires_at, g.id) AS cum
                     FROM do_budget_grants g
                     WHERE g.account_id = :account
                       AND g.expires_at > clock.now - make_interval(secs => :hour_span)) x
               WHERE x.cum >= hour.used + 1 - :per_hour
               ORDER BY x.expires_at LIMIT 1)
           END AS hour_wait_s
    FROM decision d, minute, hour, clock
    """
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
