DROP TABLE saml_logouts;
DROP TABLE saml_participants;
DROP TABLE saml_replay;
DROP TABLE saml_aggregates;
DROP TABLE saml_sps;
