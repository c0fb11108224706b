-- Versioned targets (ARCHITECTURE §8): a target's value, band and tolerance hold over an
-- interval [valid_from, valid_to). A change, through the API or a configuration reload, closes
-- the version in force and opens the next at the same instant, with who set it and why, so a
-- judgement as of any instant can use the targets in force then.
CREATE TABLE target_versions (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    year         INTEGER          NOT NULL,
    indicator    TEXT             NOT NULL,
    unit         TEXT             NOT NULL,
    value        DOUBLE PRECISION,
    lo           DOUBLE PRECISION,
    hi           DOUBLE PRECISION,
    tolerance    DOUBLE PRECISION,
    source       TEXT,
    illustrative BOOLEAN          NOT NULL DEFAULT FALSE,
    -- 'config' versions follow config/targets; 'api' ones were set by an admin and win over
    -- config until an admin sets the target again.
    origin       TEXT             NOT NULL CHECK (origin IN ('config', 'api')),
    valid_from   TIMESTAMPTZ      NOT NULL,
    valid_to     TIMESTAMPTZ,
    set_by       TEXT             NOT NULL,
    reason       TEXT,
    CHECK ((value IS NULL) = (lo IS NOT NULL AND hi IS NOT NULL)),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);

-- One version in force per target; also what `targets` (the versions in force) reads.
CREATE UNIQUE INDEX target_versions_current
    ON target_versions (year, indicator, unit) WHERE valid_to IS NULL;
-- History and "in force at" reads of one target or one year.
CREATE INDEX target_versions_key ON target_versions (year, indicator, unit, valid_from);

-- Today's targets become the first versions, in force since they were last written.
INSERT INTO target_versions (year, indicator, unit, value, lo, hi, tolerance, source,
                             illustrative, origin, valid_from, valid_to, set_by, reason)
SELECT year, indicator, unit, value, lo, hi, tolerance, source, illustrative, origin, updated_at,
       NULL, updated_by, NULL
FROM targets
ORDER BY year, indicator, unit;

DROP TABLE targets;
