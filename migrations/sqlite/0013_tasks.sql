-- Directives and tasks (chỉ đạo, nhiệm vụ): a directive of the city assigns tasks, each to an
-- owning department with a due date. A task's row holds its definition and what is recorded of
-- it now (not started, in progress, done on a date); whether it is overdue or was done late is
-- judged from the due date and the clock, never stored. Progress notes and the changes of the
-- recorded status are appended, never changed. Dates are 'YYYY-MM-DD'; times microseconds since
-- the Unix epoch.
CREATE TABLE directives (
    number       TEXT    PRIMARY KEY,
    issued_on    TEXT    NOT NULL,
    issuer       TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('ket_luan', 'chi_thi', 'nghi_quyet',
                             'ke_hoach', 'quyet_dinh', 'cong_van', 'thong_bao')),
    title_vi     TEXT    NOT NULL,
    title_en     TEXT    NOT NULL,
    source       TEXT,
    illustrative INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE tasks (
    code         TEXT    PRIMARY KEY,
    directive    TEXT    NOT NULL REFERENCES directives (number),
    title_vi     TEXT    NOT NULL,
    title_en     TEXT    NOT NULL,
    owner        TEXT    NOT NULL,
    cooperating  TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(cooperating) = 'array'),
    group_code   TEXT    NOT NULL,
    indicators   TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(indicators) = 'array'),
    due          TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('not_started', 'in_progress', 'done')),
    completed_on TEXT,
    percent      INTEGER CHECK (percent BETWEEN 0 AND 100),
    origin       TEXT    NOT NULL CHECK (origin IN ('config', 'api')),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    updated_by   TEXT    NOT NULL,
    CHECK ((status = 'done') = (completed_on IS NOT NULL))
);

CREATE INDEX tasks_owner ON tasks (owner, due);

CREATE TABLE task_progress (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    task    TEXT    NOT NULL REFERENCES tasks (code),
    at      INTEGER NOT NULL,
    author  TEXT    NOT NULL,
    note    TEXT    NOT NULL,
    percent INTEGER CHECK (percent BETWEEN 0 AND 100),
    status  TEXT    CHECK (status IN ('not_started', 'in_progress', 'done'))
);

CREATE INDEX task_progress_task ON task_progress (task, at, id);

CREATE TABLE task_status_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    task         TEXT    NOT NULL REFERENCES tasks (code),
    at           INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('not_started', 'in_progress', 'done')),
    completed_on TEXT
);

CREATE INDEX task_status_history_task ON task_status_history (task, at, id);

CREATE TRIGGER task_progress_no_update BEFORE UPDATE ON task_progress
BEGIN
    SELECT RAISE(ABORT, 'task_progress is append-only: UPDATE refused');
END;

CREATE TRIGGER task_progress_no_delete BEFORE DELETE ON task_progress
BEGIN
    SELECT RAISE(ABORT, 'task_progress is append-only: DELETE refused');
END;

CREATE TRIGGER task_status_history_no_update BEFORE UPDATE ON task_status_history
BEGIN
    SELECT RAISE(ABORT, 'task_status_history is append-only: UPDATE refused');
END;

CREATE TRIGGER task_status_history_no_delete BEFORE DELETE ON task_status_history
BEGIN
    SELECT RAISE(ABORT, 'task_status_history is append-only: DELETE refused');
END;
