-- A retraction (SDMX ACTION=D) is a revision without a value: the history keeps what was
-- withdrawn and when, and readers see the period as empty from that revision on.
-- SQLite cannot drop a NOT NULL constraint in place, so the table is rebuilt.
CREATE TABLE observations_new (
    indicator      TEXT    NOT NULL,
    unit           TEXT    NOT NULL,
    period         TEXT    NOT NULL,
    period_start   INTEGER NOT NULL,
    period_end     INTEGER NOT NULL,
    revision       INTEGER NOT NULL CHECK (revision >= 1),
    value          REAL,
    revision_label TEXT,
    source         TEXT,
    received_at    INTEGER NOT NULL,
    recorded_by    TEXT    NOT NULL
);
INSERT INTO observations_new SELECT * FROM observations;
DROP TABLE observations;
ALTER TABLE observations_new RENAME TO observations;
CREATE UNIQUE INDEX observations_key
    ON observations (indicator, unit, period_start, period, revision);
CREATE INDEX observations_received ON observations (received_at);

-- What each collector has fetched so far (cursor, ETag, Last-Modified) and each import has
-- read, so that a restart neither fetches twice nor misses anything.
CREATE TABLE feed_state (
    name       TEXT PRIMARY KEY,
    state      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
