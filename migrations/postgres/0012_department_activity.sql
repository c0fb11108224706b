-- What each department sent lately (ARCHITECTURE §1, the department's page): its last pushes
-- and refused rows, and per-minute row counts of every department and feed. Written in the
-- transaction that commits the push's rows, so every instance reads the same activity, after a
-- restart too. Bounded by the service: each department keeps its newest rows
-- ([ingest] activity_pushes_kept, activity_rejections_kept), counts go after
-- activity_counts_hours.
CREATE TABLE ingest_pushes (
    id         BIGSERIAL   PRIMARY KEY,
    -- The department whose indicators the counted rows are of, or 'unassigned'.
    department TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    format     TEXT        NOT NULL,
    sender     TEXT        NOT NULL,
    feed       TEXT        NOT NULL,
    accepted   INTEGER     NOT NULL,
    duplicates INTEGER     NOT NULL,
    rejected   INTEGER     NOT NULL
);
-- A department's newest first, and where its pruning starts.
CREATE INDEX ingest_pushes_department ON ingest_pushes (department, id);

CREATE TABLE ingest_refusals (
    id         BIGSERIAL   PRIMARY KEY,
    department TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    format     TEXT        NOT NULL,
    sender     TEXT        NOT NULL,
    feed       TEXT        NOT NULL,
    -- The row's position in its request, from 0.
    row_index  INTEGER     NOT NULL,
    code       TEXT        NOT NULL,
    message    TEXT        NOT NULL,
    field      TEXT,
    -- The offending value as sent, cut to 200 characters.
    value      TEXT,
    indicator  TEXT
);
CREATE INDEX ingest_refusals_department ON ingest_refusals (department, id);

CREATE TABLE ingest_counts (
    department TEXT   NOT NULL,
    feed       TEXT   NOT NULL,
    -- Whole minutes since the Unix epoch.
    minute     BIGINT NOT NULL,
    pushes     BIGINT NOT NULL,
    accepted   BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    rejected   BIGINT NOT NULL,
    PRIMARY KEY (department, feed, minute)
);
CREATE INDEX ingest_counts_minute ON ingest_counts (minute);
