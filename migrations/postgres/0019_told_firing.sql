-- Whether each receiver was last told an alert fires (ARCHITECTURE §5). An alert that fires and
-- resolves before its group's first notification was never announced: its receiver is not sent
-- a "resolved" for it. Set in the transaction that queues a notification; NULL (rows from before)
-- reads as told, so a receiver never misses the end of an alert it may have heard of.
ALTER TABLE alert_sequences ADD COLUMN told_firing BOOLEAN;
