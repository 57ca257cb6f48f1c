DROP TABLE notices;
DROP TABLE svc_sessions;
