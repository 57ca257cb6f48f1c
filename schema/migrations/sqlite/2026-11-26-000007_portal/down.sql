DROP TABLE notices;
DROP TABLE svc_logins;
DROP TABLE svc_sessions;
