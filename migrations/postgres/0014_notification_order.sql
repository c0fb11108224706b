-- Notifications in order per alert (ARCHITECTURE §5). Each receiver numbers the messages it is
-- sent about one alert 1, 2, 3…: the number is taken at enqueue, in the transaction that queues
-- the notification, so it survives a crash and is never given twice. A receiver that sees a
-- number lower than one it applied, or a gap, knows a message came late or went missing.
CREATE TABLE alert_sequences (
    receiver      TEXT   NOT NULL,
    fingerprint   TEXT   NOT NULL,
    last_sequence BIGINT NOT NULL,
    PRIMARY KEY (receiver, fingerprint)
);

-- The deliverer takes a notification only when no older one of its receiver and group is still
-- pending: this index answers that question for every candidate.
CREATE INDEX notifications_pending_group ON notifications (receiver, group_key, id)
    WHERE status = 'pending';
