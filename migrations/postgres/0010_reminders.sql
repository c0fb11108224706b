-- Reminders to a department that a figure is due soon or late (ARCHITECTURE §5). One row per
-- (indicator, unit, period, kind), written in the transaction that queues its notifications:
-- a reminder is sent once, whichever instance leads and however often it restarts.
CREATE TABLE reminders (
    indicator TEXT        NOT NULL,
    unit      TEXT        NOT NULL,
    -- The period's text, as the API spells it (2026-03, 2026-Q1, 2026).
    period    TEXT        NOT NULL,
    kind      TEXT        NOT NULL CHECK (kind IN ('due', 'late')),
    due_at    TIMESTAMPTZ NOT NULL,
    sent_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (indicator, unit, period, kind)
);
