CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Facility reservation and appointment booking (one booking engine), and payment orders.
-- Times are UTC instants; opening hours are local (Europe/Helsinki) minutes after midnight.

-- A service that asks for it keeps the resident's email address from userinfo with its session
-- (the payment service wants it).
ALTER TABLE svc_sessions ADD COLUMN email TEXT;
CREATE TABLE res_units (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    municipality_code TEXT NOT NULL,
    street_address TEXT NOT NULL,
    postal_code TEXT NOT NULL,
    city TEXT NOT NULL,
    contact TEXT NOT NULL,
    latitude DOUBLE PRECISION,
    longitude DOUBLE PRECISION,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE res_resources (
    id TEXT PRIMARY KEY NOT NULL,
    unit_id TEXT NOT NULL REFERENCES res_units(id),
    kind TEXT NOT NULL,
    name_fi TEXT NOT NULL,
    name_sv TEXT NOT NULL,
    name_en TEXT NOT NULL,
    description TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    purposes TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    equipment TEXT NOT NULL,
    image_url TEXT,
    terms TEXT NOT NULL,
    auth_level TEXT NOT NULL,
    lipas_id BIGINT,
    slot_minutes INTEGER NOT NULL,
    min_minutes INTEGER NOT NULL,
    max_minutes INTEGER NOT NULL,
    buffer_before INTEGER NOT NULL,
    buffer_after INTEGER NOT NULL,
    advance_min_minutes INTEGER NOT NULL,
    advance_max_days INTEGER NOT NULL,
    max_per_resident INTEGER NOT NULL,
    cancel_hours INTEGER NOT NULL,
    manual_approval BOOLEAN NOT NULL,
    price_kind TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    reduced_price_cents BIGINT,
    vat_basis_points INTEGER NOT NULL,
    active BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX res_resources_unit ON res_resources(unit_id);

CREATE TABLE res_hours (
    id TEXT PRIMARY KEY NOT NULL,
    resource_id TEXT NOT NULL REFERENCES res_resources(id) ON DELETE CASCADE,
    valid_from DATE NOT NULL,
    valid_until DATE,
    weekday INTEGER NOT NULL,
    opens_min INTEGER NOT NULL,
    closes_min INTEGER NOT NULL
);
CREATE INDEX res_hours_resource ON res_hours(resource_id);

CREATE TABLE res_exceptions (
    resource_id TEXT NOT NULL REFERENCES res_resources(id) ON DELETE CASCADE,
    day DATE NOT NULL,
    opens_min INTEGER,
    closes_min INTEGER,
    reason TEXT NOT NULL,
    PRIMARY KEY (resource_id, day)
);

CREATE TABLE res_appt_types (
    id TEXT PRIMARY KEY NOT NULL,
    resource_id TEXT NOT NULL REFERENCES res_resources(id) ON DELETE CASCADE,
    name_fi TEXT NOT NULL,
    name_sv TEXT NOT NULL,
    name_en TEXT NOT NULL,
    minutes INTEGER NOT NULL
);

CREATE TABLE res_series (
    id TEXT PRIMARY KEY NOT NULL,
    resource_id TEXT NOT NULL REFERENCES res_resources(id) ON DELETE CASCADE,
    holder TEXT NOT NULL,
    weekday INTEGER NOT NULL,
    start_min INTEGER NOT NULL,
    minutes INTEGER NOT NULL,
    first_day DATE NOT NULL,
    last_day DATE NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE res_reservations (
    id TEXT PRIMARY KEY NOT NULL,
    resource_id TEXT NOT NULL REFERENCES res_resources(id),
    sub TEXT,
    kind TEXT NOT NULL,
    series_id TEXT,
    appt_type_id TEXT,
    state TEXT NOT NULL,
    begins_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    blocked_from TIMESTAMP NOT NULL,
    blocked_until TIMESTAMP NOT NULL,
    purpose TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    vat_basis_points INTEGER NOT NULL,
    language TEXT NOT NULL,
    message TEXT,
    expires_at TIMESTAMP,
    reminded_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (begins_at < ends_at AND blocked_from <= begins_at AND ends_at <= blocked_until),
    -- No reservation blocks more than three days: overlap look-ups only search that far back.
    CHECK (blocked_until - blocked_from <= interval '3 days')
);
CREATE INDEX res_reservations_time ON res_reservations(resource_id, blocked_from);
CREATE INDEX res_reservations_sub ON res_reservations(sub, state);
CREATE INDEX res_reservations_expiry ON res_reservations(state, expires_at);

-- What the booking services still have to tell residents (a notice, a message): kept until the
-- notice board or the message API has taken it, retried with backoff.
CREATE TABLE res_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    service TEXT NOT NULL,
    channel TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX res_outbox_due ON res_outbox(service, next_attempt_at);

CREATE TABLE res_feeds (
    token_hash TEXT PRIMARY KEY NOT NULL,
    sub TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE pay_orders (
    id TEXT PRIMARY KEY NOT NULL,
    reservation_id TEXT NOT NULL REFERENCES res_reservations(id),
    sub TEXT NOT NULL,
    provider TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    vat_basis_points INTEGER NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    transaction_id TEXT,
    href TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    paid_at TIMESTAMP,
    refunded_at TIMESTAMP
);
CREATE INDEX pay_orders_reservation ON pay_orders(reservation_id);

CREATE TABLE testbank_payments (
    id TEXT PRIMARY KEY NOT NULL,
    stamp TEXT NOT NULL UNIQUE,
    reference TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    description TEXT NOT NULL,
    success_url TEXT NOT NULL,
    cancel_url TEXT NOT NULL,
    callback_success TEXT,
    callback_cancel TEXT,
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- No double booking: the database refuses any active reservation whose blocked time (with
-- buffers) overlaps another's on the same resource, whatever the application checked before.
ALTER TABLE res_reservations ADD CONSTRAINT res_reservations_no_overlap
    EXCLUDE USING gist (resource_id WITH =, tsrange(blocked_from, blocked_until) WITH &&)
    WHERE (state IN ('created', 'requires_handling', 'waiting_for_payment', 'confirmed'));
