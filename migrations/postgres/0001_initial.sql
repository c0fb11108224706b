-- Observations: every revision is kept; the highest revision of a key is its value.
CREATE TABLE observations (
    indicator      TEXT             NOT NULL,
    unit           TEXT             NOT NULL,
    period         TEXT             NOT NULL,
    period_start   TIMESTAMPTZ      NOT NULL,
    period_end     TIMESTAMPTZ      NOT NULL,
    revision       INTEGER          NOT NULL CHECK (revision >= 1),
    value          DOUBLE PRECISION NOT NULL,
    revision_label TEXT,
    source         TEXT,
    received_at    TIMESTAMPTZ      NOT NULL,
    recorded_by    TEXT             NOT NULL
);

-- The time column leads no index on purpose: every query names an indicator and a unit first.
-- A hypertable requires its time column in every unique index, hence period_start here.
CREATE UNIQUE INDEX observations_key
    ON observations (indicator, unit, period_start, period, revision);
CREATE INDEX observations_received ON observations (received_at);

-- TimescaleDB when the server has it preloaded; plain PostgreSQL otherwise. A server that
-- refuses the extension (no privilege) keeps the plain table: the service works on both.
DO $$
BEGIN
    IF current_setting('shared_preload_libraries', true) LIKE '%timescaledb%'
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
            PERFORM create_hypertable('observations', 'period_start',
                                      chunk_time_interval => INTERVAL '1 year');
        EXCEPTION WHEN others THEN
            RAISE NOTICE 'timescaledb not enabled: %', SQLERRM;
        END;
    END IF;
END
$$;

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT        NOT NULL,
    role        TEXT        NOT NULL CHECK (role IN ('admin', 'department', 'viewer')),
    department  TEXT,
    digest      BYTEA       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ,
    CHECK ((role = 'department') = (department IS NOT NULL))
);

CREATE TABLE idempotency_keys (
    token_id       TEXT        NOT NULL,
    key            TEXT        NOT NULL,
    request_digest BYTEA       NOT NULL,
    receipt        JSONB       NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (token_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE targets (
    year         INTEGER          NOT NULL,
    indicator    TEXT             NOT NULL,
    unit         TEXT             NOT NULL,
    value        DOUBLE PRECISION,
    lo           DOUBLE PRECISION,
    hi           DOUBLE PRECISION,
    tolerance    DOUBLE PRECISION,
    source       TEXT,
    illustrative BOOLEAN          NOT NULL DEFAULT FALSE,
    -- 'config' rows follow config/targets; 'api' rows were set by an admin and win over config.
    origin       TEXT             NOT NULL CHECK (origin IN ('config', 'api')),
    updated_at   TIMESTAMPTZ      NOT NULL,
    updated_by   TEXT             NOT NULL,
    PRIMARY KEY (year, indicator, unit),
    CHECK ((value IS NULL) = (lo IS NOT NULL AND hi IS NOT NULL))
);

CREATE TABLE audit_log (
    id        BIGSERIAL PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT        NOT NULL,
    action    TEXT        NOT NULL,
    subject   TEXT        NOT NULL,
    old_value JSONB,
    new_value JSONB,
    reason    TEXT
);
