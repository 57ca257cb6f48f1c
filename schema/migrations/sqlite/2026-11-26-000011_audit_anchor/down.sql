DROP TABLE audit_anchor;
