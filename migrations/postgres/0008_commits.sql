-- Commits that other instances follow (ARCHITECTURE §7). Each write group, target change, alert
-- change and token revocation that commits records one row in its own transaction and sends a
-- NOTIFY on `ktxh_commits` (delivered at commit). A follower reads the rows whose transaction id
-- is below the oldest transaction still running in its snapshot: every such transaction has ended, so
-- reading from one such bound to the next misses nothing and reads nothing twice, whatever the
-- order in which concurrent transactions commit.
CREATE TABLE commits (
    group_id     BIGINT      PRIMARY KEY,
    xid          XID8        NOT NULL DEFAULT pg_current_xact_id(),
    instance     TEXT        NOT NULL,
    -- 'observations' (a write group: its rows carry group_id), 'target', 'token' or 'alerts'.
    kind         TEXT        NOT NULL CHECK (kind IN ('observations', 'target', 'token', 'alerts')),
    -- What a target change or a revocation names: "year/indicator/unit", a token id.
    subject      TEXT,
    -- Where a write group's rows lie in the observations' key (series, period start), so a
    -- follower reads them through the key: no other index on observations slows every write.
    series       INTEGER[],
    first_start  TIMESTAMPTZ,
    last_start   TIMESTAMPTZ,
    committed_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX commits_xid ON commits (xid);
