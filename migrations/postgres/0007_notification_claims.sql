-- Notification claims (ARCHITECTURE §5). Several instances may share one database; the one
-- that delivers claims each due notification before sending it, for a lease that outlasts one
-- delivery, and recording the attempt clears the claim. A claim is taken with
-- FOR UPDATE SKIP LOCKED, so two claimers at the same moment never get the same row; an
-- instance that dies mid-delivery leaves a claim that another may take once its lease ends,
-- which is the only way a notification is sent twice (with the same idempotency key).
ALTER TABLE notifications
    ADD COLUMN claimed_by    TEXT,
    ADD COLUMN claimed_until TIMESTAMPTZ;
