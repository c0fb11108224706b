-- Explanations (giải trình) of targets by their owning department, with the actions taken
-- (giải pháp), each due by a date. Append-only: a new explanation supersedes the previous one
-- for display and every earlier one stays readable, so rows are never updated or deleted.
CREATE TABLE explanations (
    id          BIGSERIAL   PRIMARY KEY,
    year        INTEGER     NOT NULL,
    indicator   TEXT        NOT NULL,
    unit        TEXT        NOT NULL,
    body        TEXT        NOT NULL,
    -- [{"text": …, "due": "YYYY-MM-DD", "done": "YYYY-MM-DD"?}, …]
    actions     JSONB       NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(actions) = 'array'),
    -- The token's name, and the department the explanation speaks for (the indicator's owner).
    author      TEXT        NOT NULL,
    department  TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

-- The current explanation of a target is its newest row.
CREATE INDEX explanations_target ON explanations (year, indicator, unit, created_at DESC, id DESC);

CREATE FUNCTION explanations_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'explanations are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER explanations_append_only BEFORE UPDATE OR DELETE ON explanations
    FOR EACH ROW EXECUTE FUNCTION explanations_append_only();
CREATE TRIGGER explanations_no_truncate BEFORE TRUNCATE ON explanations
    FOR EACH STATEMENT EXECUTE FUNCTION explanations_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON explanations FROM PUBLIC;

-- Other instances follow a new explanation through the commits table (ARCHITECTURE §7); its
-- subject is "year/indicator/unit".
ALTER TABLE commits DROP CONSTRAINT IF EXISTS commits_kind_check;
ALTER TABLE commits ADD CONSTRAINT commits_kind_check
    CHECK (kind IN ('observations', 'target', 'token', 'alerts', 'explanation'));
