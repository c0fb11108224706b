-- Whether each receiver was last told an alert fires (ARCHITECTURE §5), as on PostgreSQL: NULL
-- (rows from before) reads as told.
ALTER TABLE alert_sequences ADD COLUMN told_firing INTEGER;
