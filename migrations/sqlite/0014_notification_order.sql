-- Notifications in order per alert (ARCHITECTURE §5), as on PostgreSQL: each receiver numbers
-- the messages it is sent about one alert 1, 2, 3…, taken at enqueue in the transaction that
-- queues the notification.
CREATE TABLE alert_sequences (
    receiver      TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL,
    last_sequence INTEGER NOT NULL,
    PRIMARY KEY (receiver, fingerprint)
);

-- The deliverer takes a notification only when no older one of its receiver and group is still
-- pending.
CREATE INDEX notifications_pending_group ON notifications (receiver, group_key, id)
    WHERE status = 'pending';
