-- The audit log becomes a hash chain and append-only.
--
-- Each row carries the SHA-256 of the previous row's hash and its own fields in a canonical
-- encoding (src/store/audit.rs), so an edit made by anyone who gets past the triggers below
-- (dropping them, or writing the file with another tool) breaks the chain at that row, and
-- `ktxh audit verify` names it.
--
-- SQLite has no SHA-256, so rows written before this migration keep a NULL hash here and the
-- service seals them into the chain, oldest first, right after migrating and before it writes
-- anything else. That one update (NULL hash to a hash, every other field unchanged) is the only
-- one the triggers let through; once sealed, a row can never change again.
ALTER TABLE audit_log ADD COLUMN client_ip TEXT;
ALTER TABLE audit_log ADD COLUMN hash BLOB;

CREATE TRIGGER audit_log_insert_sealed BEFORE INSERT ON audit_log
WHEN NEW.hash IS NULL
BEGIN
    SELECT RAISE(ABORT, 'audit_log rows must be sealed into the hash chain');
END;

-- `INSERT OR REPLACE` with an existing id deletes the old row without firing the DELETE
-- trigger (unless recursive_triggers is on): a new row may only come after every other.
CREATE TRIGGER audit_log_insert_appends BEFORE INSERT ON audit_log
WHEN NEW.id IS NOT NULL AND NEW.id <= (SELECT coalesce(max(id), 0) FROM audit_log)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: a row may not replace another');
END;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NOT (OLD.hash IS NULL AND NEW.hash IS NOT NULL
          AND NEW.id IS OLD.id AND NEW.at IS OLD.at AND NEW.actor IS OLD.actor
          AND NEW.action IS OLD.action AND NEW.subject IS OLD.subject
          AND NEW.old_value IS OLD.old_value AND NEW.new_value IS OLD.new_value
          AND NEW.reason IS OLD.reason AND NEW.client_ip IS OLD.client_ip)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused');
END;
