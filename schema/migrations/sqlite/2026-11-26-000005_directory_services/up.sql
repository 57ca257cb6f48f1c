-- Services in the directory (built-in and external e-services). Texts in fi/sv/en; list fields
-- (keywords, target groups, municipality codes) as JSON arrays. An empty municipality list
-- means the service is offered in every municipality.
CREATE TABLE dir_services (
    id TEXT PRIMARY KEY NOT NULL,
    name_fi TEXT NOT NULL,
    name_sv TEXT NOT NULL,
    name_en TEXT NOT NULL,
    description_fi TEXT NOT NULL,
    description_sv TEXT NOT NULL,
    description_en TEXT NOT NULL,
    provider TEXT NOT NULL,
    channel_url TEXT NOT NULL,
    auth_level TEXT NOT NULL,
    keywords TEXT NOT NULL,
    target_groups TEXT NOT NULL,
    municipalities TEXT NOT NULL,
    built_in BOOLEAN NOT NULL DEFAULT 0,
    updated_at TIMESTAMP NOT NULL
);
