-- Times are integers: seconds since the Unix epoch for periods, microseconds for receipt times.
CREATE TABLE observations (
    indicator      TEXT    NOT NULL,
    unit           TEXT    NOT NULL,
    period         TEXT    NOT NULL,
    period_start   INTEGER NOT NULL,
    period_end     INTEGER NOT NULL,
    revision       INTEGER NOT NULL CHECK (revision >= 1),
    value          REAL    NOT NULL,
    revision_label TEXT,
    source         TEXT,
    received_at    INTEGER NOT NULL,
    recorded_by    TEXT    NOT NULL
);
CREATE UNIQUE INDEX observations_key
    ON observations (indicator, unit, period_start, period, revision);
CREATE INDEX observations_received ON observations (received_at);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL CHECK (role IN ('admin', 'department', 'viewer')),
    department  TEXT,
    digest      BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER,
    CHECK ((role = 'department') = (department IS NOT NULL))
);

CREATE TABLE idempotency_keys (
    token_id       TEXT    NOT NULL,
    key            TEXT    NOT NULL,
    request_digest BLOB    NOT NULL,
    receipt        TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (token_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE targets (
    year         INTEGER NOT NULL,
    indicator    TEXT    NOT NULL,
    unit         TEXT    NOT NULL,
    value        REAL,
    lo           REAL,
    hi           REAL,
    tolerance    REAL,
    source       TEXT,
    illustrative INTEGER NOT NULL DEFAULT 0,
    origin       TEXT    NOT NULL CHECK (origin IN ('config', 'api')),
    updated_at   INTEGER NOT NULL,
    updated_by   TEXT    NOT NULL,
    PRIMARY KEY (year, indicator, unit),
    CHECK ((value IS NULL) = (lo IS NOT NULL AND hi IS NOT NULL))
);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    old_value TEXT,
    new_value TEXT,
    reason    TEXT
);
