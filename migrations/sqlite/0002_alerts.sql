-- Alerts and their durable outbox. An alert's state change and the events it causes commit in
-- one transaction; a dispatcher groups events into notifications; a worker delivers those.
-- Times are microseconds since the Unix epoch.
CREATE TABLE alerts (
    fingerprint TEXT PRIMARY KEY,
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    doc         TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX alerts_active ON alerts (state) WHERE state <> 'resolved';

CREATE TABLE alert_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver      TEXT    NOT NULL,
    group_key     TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    dispatched_at INTEGER
);
CREATE INDEX alert_events_undispatched ON alert_events (receiver, group_key) WHERE dispatched_at IS NULL;

CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver        TEXT    NOT NULL,
    group_key       TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_group ON notifications (receiver, group_key, created_at);

CREATE TABLE delivery_attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id INTEGER NOT NULL REFERENCES notifications (id),
    at              INTEGER NOT NULL,
    ok              INTEGER NOT NULL,
    error           TEXT
);

CREATE TABLE silences (
    id         TEXT PRIMARY KEY,
    doc        TEXT    NOT NULL,
    ends_at    INTEGER NOT NULL,
    expired_at INTEGER
);
