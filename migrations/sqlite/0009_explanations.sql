-- Explanations (giải trình) of targets by their owning department, with the actions taken
-- (giải pháp), each due by a date. Append-only: a new explanation supersedes the previous one
-- for display and every earlier one stays readable, so rows are never updated or deleted.
CREATE TABLE explanations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    year        INTEGER NOT NULL,
    indicator   TEXT    NOT NULL,
    unit        TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    -- [{"text": …, "due": "YYYY-MM-DD", "done": "YYYY-MM-DD"?}, …]
    actions     TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(actions) = 'array'),
    -- The token's name, and the department the explanation speaks for (the indicator's owner).
    author      TEXT    NOT NULL,
    department  TEXT    NOT NULL,
    -- Microseconds since the Unix epoch.
    created_at  INTEGER NOT NULL
);

-- The current explanation of a target is its newest row.
CREATE INDEX explanations_target ON explanations (year, indicator, unit, created_at DESC, id DESC);

CREATE TRIGGER explanations_no_update BEFORE UPDATE ON explanations
BEGIN
    SELECT RAISE(ABORT, 'explanations are append-only: UPDATE refused');
END;

CREATE TRIGGER explanations_no_delete BEFORE DELETE ON explanations
BEGIN
    SELECT RAISE(ABORT, 'explanations are append-only: DELETE refused');
END;
