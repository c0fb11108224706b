-- A task's definition (directive, titles, owner, co-operating units, group, due date, linked
-- indicators) is versioned as a target is (ARCHITECTURE §8): every definition a task has had is
-- appended here with the instant it took effect and who set it, and never changed, so a report
-- cut off in the past judges a task by the due date of then and names the owner of then. The
-- task's row keeps the definition in force now; a new row is appended when a task is stored
-- and when a redefinition (through the API or a configuration reload) changes any of it.
-- Dates are 'YYYY-MM-DD'; times microseconds since the Unix epoch.
CREATE TABLE task_definitions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task        TEXT    NOT NULL REFERENCES tasks (code),
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    directive   TEXT    NOT NULL REFERENCES directives (number),
    title_vi    TEXT    NOT NULL,
    title_en    TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    cooperating TEXT    NOT NULL CHECK (json_type(cooperating) = 'array'),
    group_code  TEXT    NOT NULL,
    indicators  TEXT    NOT NULL CHECK (json_type(indicators) = 'array'),
    due         TEXT    NOT NULL
);

CREATE INDEX task_definitions_task ON task_definitions (task, at, id);

CREATE TRIGGER task_definitions_no_update BEFORE UPDATE ON task_definitions
BEGIN
    SELECT RAISE(ABORT, 'task_definitions is append-only: UPDATE refused');
END;

CREATE TRIGGER task_definitions_no_delete BEFORE DELETE ON task_definitions
BEGIN
    SELECT RAISE(ABORT, 'task_definitions is append-only: DELETE refused');
END;

-- Tasks stored before: what they were defined as earlier was not kept, so the definition they
-- have now stands from when they were stored, as it did. It was set by the configuration, or
-- else by the admin whose write through the API last set it: the audit log names that token
-- `admin:<name>`, a definition names it as a progress note does, by its name; failing both,
-- by whoever last wrote the row.
INSERT INTO task_definitions (task, at, actor, directive, title_vi, title_en, owner, cooperating,
                              group_code, indicators, due)
SELECT t.code, t.created_at,
       CASE WHEN t.origin = 'config' THEN 'config'
            ELSE COALESCE((SELECT CASE WHEN a.actor LIKE 'admin:%' THEN substr(a.actor, 7)
                                       ELSE a.actor END
                             FROM audit_log a
                            WHERE a.subject = t.code AND a.action IN ('task.create', 'task.update')
                            ORDER BY a.id DESC LIMIT 1), t.updated_by) END,
       t.directive, t.title_vi, t.title_en, t.owner, t.cooperating, t.group_code, t.indicators,
       t.due
  FROM tasks t
 ORDER BY t.code;
