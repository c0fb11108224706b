-- Notification claims (ARCHITECTURE §5), as on PostgreSQL: the deliverer claims each due
-- notification for a lease before sending it, and recording the attempt clears the claim.
-- SQLite serves one instance, and its single writer makes one UPDATE … RETURNING atomic, so
-- two claimers never get the same row here either.
--
-- claimed_until is microseconds since the Unix epoch, as next_attempt_at.
ALTER TABLE notifications ADD COLUMN claimed_by TEXT;
ALTER TABLE notifications ADD COLUMN claimed_until INTEGER;
