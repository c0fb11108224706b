-- Directives and tasks (chỉ đạo, nhiệm vụ): a directive of the city assigns tasks, each to an
-- owning department with a due date. A task's row holds its definition and what is recorded of
-- it now (not started, in progress, done on a date); whether it is overdue or was done late is
-- judged from the due date and the clock, never stored. Progress notes and the changes of the
-- recorded status are appended, never changed.
CREATE TABLE directives (
    number       TEXT        PRIMARY KEY,
    issued_on    DATE        NOT NULL,
    issuer       TEXT        NOT NULL,
    kind         TEXT        NOT NULL CHECK (kind IN ('ket_luan', 'chi_thi', 'nghi_quyet',
                                 'ke_hoach', 'quyet_dinh', 'cong_van', 'thong_bao')),
    title_vi     TEXT        NOT NULL,
    title_en     TEXT        NOT NULL,
    source       TEXT,
    illustrative BOOLEAN     NOT NULL DEFAULT FALSE
);

CREATE TABLE tasks (
    code         TEXT        PRIMARY KEY,
    directive    TEXT        NOT NULL REFERENCES directives (number),
    title_vi     TEXT        NOT NULL,
    title_en     TEXT        NOT NULL,
    owner        TEXT        NOT NULL,
    -- ["TAX", "HCM_P_SAI_GON", …]: departments or units that co-operate.
    cooperating  JSONB       NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(cooperating) = 'array'),
    group_code   TEXT        NOT NULL,
    indicators   JSONB       NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(indicators) = 'array'),
    due          DATE        NOT NULL,
    status       TEXT        NOT NULL CHECK (status IN ('not_started', 'in_progress', 'done')),
    completed_on DATE,
    percent      SMALLINT    CHECK (percent BETWEEN 0 AND 100),
    -- 'config' (config/directives/) or 'api'.
    origin       TEXT        NOT NULL CHECK (origin IN ('config', 'api')),
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    updated_by   TEXT        NOT NULL,
    CHECK ((status = 'done') = (completed_on IS NOT NULL))
);

CREATE INDEX tasks_owner ON tasks (owner, due);

CREATE TABLE task_progress (
    id      BIGSERIAL   PRIMARY KEY,
    task    TEXT        NOT NULL REFERENCES tasks (code),
    at      TIMESTAMPTZ NOT NULL,
    author  TEXT        NOT NULL,
    note    TEXT        NOT NULL,
    percent SMALLINT    CHECK (percent BETWEEN 0 AND 100),
    status  TEXT        CHECK (status IN ('not_started', 'in_progress', 'done'))
);

CREATE INDEX task_progress_task ON task_progress (task, at, id);

CREATE TABLE task_status_history (
    id           BIGSERIAL   PRIMARY KEY,
    task         TEXT        NOT NULL REFERENCES tasks (code),
    at           TIMESTAMPTZ NOT NULL,
    actor        TEXT        NOT NULL,
    status       TEXT        NOT NULL CHECK (status IN ('not_started', 'in_progress', 'done')),
    completed_on DATE
);

CREATE INDEX task_status_history_task ON task_status_history (task, at, id);

CREATE FUNCTION tasks_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER task_progress_append_only BEFORE UPDATE OR DELETE ON task_progress
    FOR EACH ROW EXECUTE FUNCTION tasks_append_only();
CREATE TRIGGER task_progress_no_truncate BEFORE TRUNCATE ON task_progress
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_append_only();
CREATE TRIGGER task_status_history_append_only BEFORE UPDATE OR DELETE ON task_status_history
    FOR EACH ROW EXECUTE FUNCTION tasks_append_only();
CREATE TRIGGER task_status_history_no_truncate BEFORE TRUNCATE ON task_status_history
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON task_progress, task_status_history FROM PUBLIC;

-- Other instances follow a task's change through the commits table (ARCHITECTURE §7); its
-- subject is the task's code.
ALTER TABLE commits DROP CONSTRAINT IF EXISTS commits_kind_check;
ALTER TABLE commits ADD CONSTRAINT commits_kind_check
    CHECK (kind IN ('observations', 'target', 'token', 'alerts', 'explanation', 'approval', 'task'));
