DROP TABLE audit_events;
DROP TABLE audit_head;
DROP TABLE login_throttle;
DROP TABLE sessions;
DROP TABLE users;
