-- The service's first start (ARCHITECTURE §4): lateness is judged from it, unless
-- `[release_calendar] staleness_from` says otherwise, so a new installation does not count
-- every past figure it never had as late. One row, written once by the first start and kept.
-- A database that already holds figures or audit rows was started before: its first start is
-- the earliest of those, so an upgrade changes no judgement. Microseconds since the epoch.
CREATE TABLE service_start (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    started_at INTEGER NOT NULL
);

INSERT INTO service_start (id, started_at)
SELECT 1, MIN(at) FROM (
    SELECT MIN(received_at) AS at FROM observations
    UNION ALL
    SELECT MIN(at) FROM audit_log
) WHERE at IS NOT NULL
HAVING MIN(at) IS NOT NULL;

-- The outbox listing (GET /api/v1/notifications) pages newest first by id, filtered by status,
-- receiver or creation time: each filter walks its own index in id order.
CREATE INDEX notifications_status_id ON notifications (status, id);
CREATE INDEX notifications_receiver_id ON notifications (receiver, id);
CREATE INDEX notifications_created ON notifications (created_at);
