-- On TimescaleDB, observations written from now on go into chunks of 90 days instead of a year
-- (ARCHITECTURE §7); chunks already made keep their interval.
--
-- Measured with the core benchmark's P3 on TimescaleDB 2.19 (shared_buffers 128 MiB, 1.3 GB of
-- history, 676 daily series, 10,000-row requests): appending after the history ran at
-- 0.66–0.80× of the rate into an empty table with yearly chunks, its group writes a third
-- slower, PostgreSQL descending a key whose pages the history kept pushing out of shared
-- buffers; with 90-day chunks it ran at 1.01× in two runs. The chunk being appended to, with its
-- key, has to stay in memory while older chunks compete for it, and a year of a whole city's
-- series outgrows that sooner than a quarter. Reads lose nothing: in the measurement of 0005 a
-- quarter's chunks read as fast as a year's (one year of every series 123 ms against 131 ms,
-- one series' history 3.9 ms against 4.6 ms). One calendar quarter touches at most two chunks.
--
-- Nested, since a statement naming TimescaleDB's views is only planned where it has them.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_name = 'observations') THEN
            PERFORM set_chunk_time_interval('observations', INTERVAL '90 days');
        END IF;
    END IF;
END
$$;
