-- Service directory: the Statistics Finland sub-region (seutukunta) classification and its
-- municipalities. Replaced as a whole when the yearly classification changes.
CREATE TABLE dir_seutukunnat (
    code TEXT PRIMARY KEY NOT NULL,
    name_fi TEXT NOT NULL,
    name_sv TEXT NOT NULL,
    source TEXT NOT NULL
);

CREATE TABLE dir_municipalities (
    code TEXT PRIMARY KEY NOT NULL,
    name_fi TEXT NOT NULL,
    seutukunta_code TEXT NOT NULL REFERENCES dir_seutukunnat(code)
);
CREATE INDEX dir_municipalities_seutukunta ON dir_municipalities(seutukunta_code);
