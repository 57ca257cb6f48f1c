DROP TABLE message_outbox;
ALTER TABLE users DROP COLUMN message_channels;
