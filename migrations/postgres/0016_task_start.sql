-- A report of a past period reads each task as it stood at its cut-off (src/report/tasks.rs):
-- its recorded status from task_status_history and its progress from the latest note by then.
-- Before any note sets one, a task's progress is the one it was stored with (a configured
-- task's `percent`), which the row's `percent` loses to the first note that sets one; it is
-- kept here.
ALTER TABLE tasks ADD COLUMN start_percent SMALLINT CHECK (start_percent BETWEEN 0 AND 100);

-- Tasks stored before: no note has set a percent, so the row still holds the starting one…
UPDATE tasks SET start_percent = percent
 WHERE NOT EXISTS (SELECT 1 FROM task_progress p WHERE p.task = tasks.code AND p.percent IS NOT NULL);

-- …or the first progress note's audit row kept the task as it was before it.
UPDATE tasks SET start_percent = (
        SELECT (a.old_value ->> 'percent')::smallint FROM audit_log a
         WHERE a.action = 'task.progress' AND a.subject = tasks.code
         ORDER BY a.id LIMIT 1)
 WHERE EXISTS (SELECT 1 FROM task_progress p WHERE p.task = tasks.code AND p.percent IS NOT NULL);
