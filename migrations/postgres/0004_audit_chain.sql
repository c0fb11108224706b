-- The audit log becomes a hash chain and append-only.
--
-- Each row carries the SHA-256 of the previous row's hash and its own fields in a canonical
-- encoding (src/store/audit.rs), so an edit made by anyone who gets past the triggers below (a
-- superuser disabling them, a restore of an edited dump) breaks the chain at that row, and
-- `ktxh audit verify` names it.
--
-- Rows written before this migration keep a NULL hash here: the canonical encoding lives in the
-- service, which seals them into the chain, oldest first, right after migrating and before it
-- writes anything else. That one update (NULL hash to a hash, every other field unchanged) is
-- the only one the trigger lets through; once sealed, a row can never change again.
ALTER TABLE audit_log ADD COLUMN client_ip TEXT;
ALTER TABLE audit_log ADD COLUMN hash BYTEA;

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.hash IS NULL THEN
            RAISE EXCEPTION 'audit_log rows must be sealed into the hash chain'
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF OLD.hash IS NULL AND NEW.hash IS NOT NULL
           AND (NEW.id, NEW.at, NEW.actor, NEW.action, NEW.subject, NEW.old_value,
                NEW.new_value, NEW.reason, NEW.client_ip)
               IS NOT DISTINCT FROM
               (OLD.id, OLD.at, OLD.actor, OLD.action, OLD.subject, OLD.old_value,
                OLD.new_value, OLD.reason, OLD.client_ip) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE INSERT OR UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
-- The service's role owns the table, and an owner keeps TRUNCATE whatever is revoked; a
-- statement trigger holds for the owner too.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
-- Other roles granted access to the database read the log at most.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
