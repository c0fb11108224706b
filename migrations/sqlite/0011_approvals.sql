-- Approvals (ARCHITECTURE §8): preliminary → verified → official per revision. The observation
-- row's `state` stays the revision's current state (what every read shows); each step up is one
-- row here, appended and never changed, with when, by whom and why. A revision reaches each state
-- once, so the key below makes a repeated approval a no-op. A new revision starts preliminary.
-- Times are microseconds since the Unix epoch, as in observations.
CREATE TABLE approvals (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    series_id    INTEGER NOT NULL,
    period_start INTEGER NOT NULL,
    period_end   INTEGER NOT NULL,
    revision     INTEGER NOT NULL CHECK (revision >= 1),
    -- 1 verified, 2 official.
    state        INTEGER NOT NULL CHECK (state BETWEEN 1 AND 2),
    approved_at  INTEGER NOT NULL,
    approved_by  TEXT    NOT NULL,
    note         TEXT,
    group_id     INTEGER NOT NULL,
    UNIQUE (series_id, period_start, period_end, revision, state)
);

CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals
BEGIN
    SELECT RAISE(ABORT, 'approvals are append-only: UPDATE refused');
END;

CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
BEGIN
    SELECT RAISE(ABORT, 'approvals are append-only: DELETE refused');
END;

-- The approving roles: a department's approver (scoped to it, like a department token) and the
-- statistics office. SQLite cannot change a CHECK in place: the table is copied.
CREATE TABLE api_tokens_v2 (
    id          TEXT PRIMARY KEY,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL
                CHECK (role IN ('admin', 'department', 'viewer', 'approver', 'statistics')),
    department  TEXT,
    digest      BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER,
    CHECK ((role IN ('department', 'approver')) = (department IS NOT NULL))
);
INSERT INTO api_tokens_v2 (id, name, role, department, digest, created_at, expires_at, revoked_at)
SELECT id, name, role, department, digest, created_at, expires_at, revoked_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_v2 RENAME TO api_tokens;
