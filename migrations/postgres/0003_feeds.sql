-- A retraction (SDMX ACTION=D) is a revision without a value: the history keeps what was
-- withdrawn and when, and readers see the period as empty from that revision on.
ALTER TABLE observations ALTER COLUMN value DROP NOT NULL;

-- What each collector has fetched so far (cursor, ETag, Last-Modified) and each import has
-- read, so that a restart neither fetches twice nor misses anything.
CREATE TABLE feed_state (
    name       TEXT PRIMARY KEY,
    state      JSONB       NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
