-- Approvals (ARCHITECTURE §8): preliminary → verified → official per revision. The observation
-- row's `state` stays the revision's current state (what every read shows); each step up is one
-- row here, appended and never changed, with when, by whom and why. A revision reaches each state
-- once, so the key below makes a repeated approval a no-op. A new revision starts preliminary.
CREATE TABLE approvals (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    series_id    INTEGER     NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    period_end   TIMESTAMPTZ NOT NULL,
    revision     INTEGER     NOT NULL CHECK (revision >= 1),
    -- 1 verified, 2 official.
    state        SMALLINT    NOT NULL CHECK (state BETWEEN 1 AND 2),
    approved_at  TIMESTAMPTZ NOT NULL,
    approved_by  TEXT        NOT NULL,
    note         TEXT,
    -- The commit (ARCHITECTURE §7) that other instances follow this approval by.
    group_id     BIGINT      NOT NULL,
    UNIQUE (series_id, period_start, period_end, revision, state)
);

CREATE INDEX approvals_group ON approvals (group_id);

CREATE FUNCTION approvals_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'approvals are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER approvals_append_only BEFORE UPDATE OR DELETE ON approvals
    FOR EACH ROW EXECUTE FUNCTION approvals_append_only();
CREATE TRIGGER approvals_no_truncate BEFORE TRUNCATE ON approvals
    FOR EACH STATEMENT EXECUTE FUNCTION approvals_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON approvals FROM PUBLIC;

-- The approving roles: a department's approver (scoped to it, like a department token) and the
-- statistics office.
ALTER TABLE api_tokens DROP CONSTRAINT IF EXISTS api_tokens_role_check;
ALTER TABLE api_tokens DROP CONSTRAINT IF EXISTS api_tokens_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('admin', 'department', 'viewer', 'approver', 'statistics'));
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_check
    CHECK ((role IN ('department', 'approver')) = (department IS NOT NULL));

-- Other instances follow approvals through the commits table; an approval commit's revisions
-- are the approvals rows of its group.
ALTER TABLE commits DROP CONSTRAINT IF EXISTS commits_kind_check;
ALTER TABLE commits ADD CONSTRAINT commits_kind_check
    CHECK (kind IN ('observations', 'target', 'token', 'alerts', 'explanation', 'approval'));
