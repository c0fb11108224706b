-- Alerts and their durable outbox. An alert's state change and the events it causes commit in
-- one transaction; a dispatcher groups events into notifications; a worker delivers those.
CREATE TABLE alerts (
    fingerprint TEXT PRIMARY KEY,
    state       TEXT        NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    doc         JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX alerts_active ON alerts (state) WHERE state <> 'resolved';

CREATE TABLE alert_events (
    id            BIGSERIAL PRIMARY KEY,
    receiver      TEXT        NOT NULL,
    group_key     TEXT        NOT NULL,
    fingerprint   TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    dispatched_at TIMESTAMPTZ
);
CREATE INDEX alert_events_undispatched ON alert_events (receiver, group_key) WHERE dispatched_at IS NULL;

CREATE TABLE notifications (
    id              BIGSERIAL PRIMARY KEY,
    receiver        TEXT        NOT NULL,
    group_key       TEXT        NOT NULL,
    payload         JSONB       NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ,
    last_error      TEXT
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_group ON notifications (receiver, group_key, created_at);

CREATE TABLE delivery_attempts (
    id              BIGSERIAL PRIMARY KEY,
    notification_id BIGINT      NOT NULL REFERENCES notifications (id),
    at              TIMESTAMPTZ NOT NULL,
    ok              BOOLEAN     NOT NULL,
    error           TEXT
);

CREATE TABLE silences (
    id         TEXT PRIMARY KEY,
    doc        JSONB       NOT NULL,
    ends_at    TIMESTAMPTZ NOT NULL,
    expired_at TIMESTAMPTZ
);
