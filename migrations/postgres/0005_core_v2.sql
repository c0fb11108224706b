-- The narrow observations schema (ARCHITECTURE §8), converting a v1 database in place.
--
-- A revision row names its series, recorder and source by small integer ids instead of
-- repeating their text, keeps both when the figure became known (reported_at: what `as_of`
-- reads by) and when this service stored it (received_at), an approval state, and the write
-- group (one commit) that stored it. The period text is not stored: the service derives it from
-- period_start/period_end in the city's zone, and period_end tells an instant from the day that
-- starts at the same instant.

CREATE TABLE series (
    id        INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    indicator TEXT NOT NULL,
    unit      TEXT NOT NULL,
    UNIQUE (indicator, unit)
);

CREATE TABLE recorders (
    id   INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE sources (
    id   INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- One number per committed write group, for telling instances what another one wrote.
CREATE SEQUENCE write_groups AS BIGINT;

-- No foreign keys to series, recorders and sources: the store takes those ids from the tables
-- themselves, which never lose a row, and a key's check would cost every ingested row three
-- lookups.
CREATE TABLE observations_v2 (
    series_id    INTEGER          NOT NULL,
    period_start TIMESTAMPTZ      NOT NULL,
    period_end   TIMESTAMPTZ      NOT NULL,
    revision     INTEGER          NOT NULL CHECK (revision >= 1),
    -- NULL in a retraction: the period is empty from this revision on.
    value        DOUBLE PRECISION,
    reported_at  TIMESTAMPTZ      NOT NULL,
    received_at  TIMESTAMPTZ      NOT NULL,
    -- 0 preliminary, 1 verified, 2 official.
    state        SMALLINT         NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 2),
    recorder_id  INTEGER          NOT NULL,
    source_id    INTEGER,
    label        TEXT,
    group_id     BIGINT           NOT NULL,
    CHECK (period_end >= period_start)
);

-- The only index. Every read names a series and takes the highest revision per period, which
-- this key serves in its own order (EXPLAIN: Index Scan under Unique, no Sort): observations,
-- bucketed, revisions, and the write path's look-up of the latest revision of each key. The
-- engine's latest_between reads one year of every series: on TimescaleDB the chunks outside
-- the year are excluded and the year's chunks are read whole; on plain PostgreSQL the table is
-- read whole (Parallel Seq Scan; 245 ms for a year of 110,700 periods among 680,000 rows, the
-- same as TimescaleDB's), which costs less than an index on period_start would cost every
-- ingest. A hypertable needs its time column in every unique index, which this key has.
CREATE UNIQUE INDEX observations_v2_key
    ON observations_v2 (series_id, period_start, period_end, revision DESC);

-- On TimescaleDB (detected as 0001 does) the new table is a hypertable on period_start.
--
-- Chunk interval: measured on TimescaleDB 2.19 with 775,500 rows (300 daily series over
-- 2019–2025 and 100 monthly ones), reading one year of every series (latest_between) and one
-- series' whole history (observations), warm: 1 month chunks (86) took 151 ms and 12.3 ms,
-- 3 months (30) 123 ms and 3.9 ms, 1 year (8) 131 ms and 4.6 ms. Month chunks cost every
-- per-series read a probe per chunk; quarters and years read alike, and a year matches the
-- engine's one-year read and the yearly targets and keeps the chunk count (and planning time)
-- small over decades. TimescaleDB counts '1 year' as 360 days and aligns chunks to multiples of
-- it from the epoch, not to 1 January, so one calendar year touches at most two chunks. The narrow rows with their key take about 150 bytes each (118 MB for
-- those rows), so a year's chunk stays far below a quarter of memory even at tens of millions
-- of rows a year.
--
-- Compression (where the server's TimescaleDB licence has it; the Apache-licensed build does
-- not, and then the table stays uncompressed): chunks whose every period started more than two
-- years ago, segmented by series (every read names one) and ordered as the key. Revisions of
-- such old periods are rare, and TimescaleDB 2.19 accepts them into compressed chunks.
DO $$
BEGIN
    IF current_setting('shared_preload_libraries', true) LIKE '%timescaledb%'
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
            PERFORM create_hypertable('observations_v2', 'period_start',
                                      chunk_time_interval => INTERVAL '1 year',
                                      create_default_indexes => false);
        EXCEPTION WHEN others THEN
            RAISE NOTICE 'timescaledb not enabled: %', SQLERRM;
        END;
        IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
           AND current_setting('timescaledb.license', true) = 'timescale' THEN
            BEGIN
                ALTER TABLE observations_v2 SET (
                    timescaledb.compress,
                    timescaledb.compress_segmentby = 'series_id',
                    timescaledb.compress_orderby = 'period_start, period_end, revision DESC'
                );
                PERFORM add_compression_policy('observations_v2', INTERVAL '2 years');
            EXCEPTION WHEN others THEN
                RAISE NOTICE 'observations stay uncompressed: %', SQLERRM;
            END;
        END IF;
    END IF;
END
$$;

-- The v1 rows: every revision kept with its number, value, label and source; it was known when
-- it was stored, and is preliminary. Rows stored by one request shared their received_at and
-- recorder, which numbers their write group.
INSERT INTO series (indicator, unit)
    SELECT DISTINCT indicator, unit FROM observations ORDER BY indicator, unit;
INSERT INTO recorders (name)
    SELECT DISTINCT recorded_by FROM observations ORDER BY recorded_by;
INSERT INTO sources (name)
    SELECT DISTINCT source FROM observations WHERE source IS NOT NULL ORDER BY source;

INSERT INTO observations_v2 (series_id, period_start, period_end, revision, value, reported_at,
                             received_at, state, recorder_id, source_id, label, group_id)
SELECT s.id, o.period_start, o.period_end, o.revision, o.value, o.received_at, o.received_at, 0,
       r.id, src.id, o.revision_label,
       dense_rank() OVER (ORDER BY o.received_at, o.recorded_by)
FROM observations o
JOIN series s ON s.indicator = o.indicator AND s.unit = o.unit
JOIN recorders r ON r.name = o.recorded_by
LEFT JOIN sources src ON src.name = o.source;

SELECT setval('write_groups', max(group_id)) FROM observations_v2 HAVING count(*) > 0;

DROP TABLE observations;
ALTER TABLE observations_v2 RENAME TO observations;
ALTER INDEX observations_v2_key RENAME TO observations_key;
