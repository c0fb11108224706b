-- The narrow observation schema (ARCHITECTURE §8), converting a v1 database in place.
--
-- A revision names its series, recorder and source by small integer ids; the period text is no
-- longer stored: the period is its bounds, and readers derive the text from them in the city's
-- zone (an instant has start = end, so it never collides with the day starting at that instant).
-- Each revision keeps when it became known (`reported_at`, what "as of" reads by) apart from
-- when it was stored (`received_at`), an approval state (0 preliminary, 1 verified, 2 official)
-- and the write group (one commit) that stored it.
--
-- All times here are microseconds since the Unix epoch: periods too, so an instant keeps its
-- fraction of a second (v1 kept period bounds in whole seconds and the fraction in the text).

CREATE TABLE series (
    id        INTEGER PRIMARY KEY,
    indicator TEXT NOT NULL,
    unit      TEXT NOT NULL,
    UNIQUE (indicator, unit)
);

CREATE TABLE recorders (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE sources (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- SQLite has no sequences: the last group id handed out, bumped inside each write transaction
-- (which holds SQLite's one write lock, so two writers never get the same id).
CREATE TABLE write_groups (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);

-- Clustered on the key: a series' periods and a period's revisions lie together, which is what
-- every read and the revision lookup of a write walk. The key is the only index: the engine's
-- one-year read of every series scans the table, which costs less than an index on
-- period_start would cost every ingested row. No foreign keys to series, recorders and
-- sources: the store takes those ids from the tables themselves, which never lose a row, and
-- the checks would cost every ingested row three lookups.
CREATE TABLE observations_v2 (
    series_id    INTEGER NOT NULL,
    period_start INTEGER NOT NULL,
    period_end   INTEGER NOT NULL CHECK (period_end >= period_start),
    revision     INTEGER NOT NULL CHECK (revision >= 1),
    value        REAL,
    reported_at  INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 2),
    recorder_id  INTEGER NOT NULL,
    source_id    INTEGER,
    label        TEXT,
    group_id     INTEGER NOT NULL,
    PRIMARY KEY (series_id, period_start, period_end, revision)
) WITHOUT ROWID;

INSERT INTO series (indicator, unit)
SELECT DISTINCT indicator, unit FROM observations ORDER BY indicator, unit;

INSERT INTO recorders (name)
SELECT DISTINCT recorded_by FROM observations ORDER BY recorded_by;

INSERT INTO sources (name)
SELECT DISTINCT source FROM observations WHERE source IS NOT NULL ORDER BY source;

-- A v1 batch was stored with one receipt time by one recorder: each such pair becomes one
-- write group, numbered in the order they were stored. A v1 revision was known when it was
-- stored, and nothing had been approved yet.
CREATE TEMP TABLE v1_groups (
    received_at INTEGER NOT NULL,
    recorded_by TEXT    NOT NULL,
    group_id    INTEGER NOT NULL,
    PRIMARY KEY (received_at, recorded_by)
) WITHOUT ROWID;
INSERT INTO v1_groups (received_at, recorded_by, group_id)
SELECT received_at, recorded_by,
       row_number() OVER (ORDER BY received_at, recorded_by) AS group_id
FROM (SELECT DISTINCT received_at, recorded_by FROM observations);

-- An instant's text (RFC 3339 in UTC, as v1 wrote it) holds the fraction of a second its
-- whole-second bounds lost: `…:SS.fffZ` gives back fff as microseconds.
--
-- Rows go in in key order, so the clustered table is appended to rather than split page by
-- page: converting 1,000,000 v1 rows (1,000 series, 800 batches) took 4.1–6.0 s of CPU this
-- way and 6.9–7.6 s in the v1 table's order, with a third of the system time (sqlite3 3.40,
-- three runs each on a busy two-core machine).
WITH v1 AS (
    SELECT o.*,
           CASE WHEN instr(o.period, 'T') > 0 AND substr(o.period, 20, 1) = '.'
                THEN CAST(substr(substr(o.period, 21, length(o.period) - 21) || '000000', 1, 6)
                          AS INTEGER)
                ELSE 0 END AS fraction
    FROM observations o
)
INSERT INTO observations_v2 (series_id, period_start, period_end, revision, value, reported_at,
                             received_at, state, recorder_id, source_id, label, group_id)
SELECT s.id,
       v1.period_start * 1000000 + v1.fraction,
       v1.period_end * 1000000 + v1.fraction,
       v1.revision, v1.value, v1.received_at, v1.received_at, 0, r.id, src.id,
       v1.revision_label, g.group_id
FROM v1
JOIN series s ON s.indicator = v1.indicator AND s.unit = v1.unit
JOIN recorders r ON r.name = v1.recorded_by
LEFT JOIN sources src ON src.name = v1.source
JOIN v1_groups g ON g.received_at = v1.received_at AND g.recorded_by = v1.recorded_by
ORDER BY 1, 2, 3, 4;

INSERT INTO write_groups (id, last) SELECT 1, coalesce(max(group_id), 0) FROM v1_groups;

DROP TABLE v1_groups;
DROP TABLE observations;
ALTER TABLE observations_v2 RENAME TO observations;
