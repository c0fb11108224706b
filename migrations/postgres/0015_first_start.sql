-- The service's first start (ARCHITECTURE §4): lateness is judged from it, unless
-- `[release_calendar] staleness_from` says otherwise, so a new installation does not count
-- every past figure it never had as late. One row, written once by the first start and kept.
-- A database that already holds figures or audit rows was started before: its first start is
-- the earliest of those, so an upgrade changes no judgement.
CREATE TABLE service_start (
    id         SMALLINT    PRIMARY KEY CHECK (id = 1),
    started_at TIMESTAMPTZ NOT NULL
);

INSERT INTO service_start (id, started_at)
SELECT 1, first FROM (
    SELECT LEAST(
        (SELECT MIN(received_at) FROM observations),
        (SELECT MIN(at) FROM audit_log)
    ) AS first
) AS known
WHERE first IS NOT NULL;

-- The outbox listing (GET /api/v1/notifications) pages newest first by id, filtered by status,
-- receiver, alert or creation time: each filter walks its own index in id order; an alert is
-- found by the fingerprints in the payload.
CREATE INDEX notifications_status_id ON notifications (status, id);
CREATE INDEX notifications_receiver_id ON notifications (receiver, id);
CREATE INDEX notifications_created ON notifications (created_at);
CREATE INDEX notifications_alerts ON notifications USING GIN ((payload -> 'alerts') jsonb_path_ops);
