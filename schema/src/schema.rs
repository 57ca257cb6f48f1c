// The diesel schema, written for both backends with portable column types only.

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Nullable<Text>,
        role -> Text,
        disabled -> Bool,
        given_name -> Nullable<Text>,
        family_name -> Nullable<Text>,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        street_address -> Nullable<Text>,
        postal_code -> Nullable<Text>,
        locality -> Nullable<Text>,
        country -> Nullable<Text>,
        home_municipality -> Nullable<Text>,
        preferred_language -> Text,
        national_id_enc -> Nullable<Text>,
        national_id_index -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        message_channels -> Text,
        erasure_requested_at -> Nullable<Timestamp>,
        erased_at -> Nullable<Timestamp>,
        external_id -> Nullable<Text>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        token_hash -> Text,
        user_id -> Text,
        acr -> Text,
        auth_time -> Timestamp,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    login_throttle (throttle_key) {
        throttle_key -> Text,
        failures -> Integer,
        window_start -> Timestamp,
        blocked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    audit_anchor (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        id -> Text,
        occurred_at -> Timestamp,
        event_type -> Text,
        outcome -> Text,
        actor -> Nullable<Text>,
        subject -> Nullable<Text>,
        ip -> Nullable<Text>,
        details -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    saml_sps,
    saml_aggregates,
    saml_replay,
    saml_participants,
    saml_logouts,
    sessions,
    login_throttle,
    audit_head,
    audit_anchor,
    audit_events,
    signing_keys,
    oidc_clients,
    dir_seutukunnat,
    dir_municipalities,
    dir_services,
    oidc_auth_requests,
    oidc_grants,
    oidc_codes,
    oidc_refresh_tokens,
    oidc_consents,
    oidc_revoked_tokens,
    oidc_used_assertions,
    svc_sessions,
    saml_participant_names,
    notices,
    message_outbox,
    authz_roles,
    authz_role_permissions,
    authz_groups,
    authz_group_members,
    authz_grants,
    authz_state
);

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        public_jwk -> Text,
        private_key_enc -> Text,
        created_at -> Timestamp,
        activates_at -> Timestamp,
        retires_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    oidc_clients (client_id) {
        client_id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        public_client -> Bool,
        redirect_uris -> Text,
        grant_types -> Text,
        scopes -> Text,
        token_endpoint_auth_method -> Text,
        allow_national_id -> Bool,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        post_logout_redirect_uris -> Text,
        backchannel_logout_uri -> Nullable<Text>,
        subject_type -> Text,
        sector_identifier -> Nullable<Text>,
        jwks -> Nullable<Text>,
        require_consent -> Bool,
        id_token_alg -> Text,
        registration_token_hash -> Nullable<Text>,
        release_permissions -> Nullable<Text>,
    }
}

diesel::table! {
    dir_seutukunnat (code) {
        code -> Text,
        name_fi -> Text,
        name_sv -> Text,
        source -> Text,
    }
}

diesel::table! {
    dir_municipalities (code) {
        code -> Text,
        name_fi -> Text,
        seutukunta_code -> Text,
    }
}

diesel::joinable!(dir_municipalities -> dir_seutukunnat (seutukunta_code));

diesel::table! {
    dir_services (id) {
        id -> Text,
        name_fi -> Text,
        name_sv -> Text,
        name_en -> Text,
        description_fi -> Text,
        description_sv -> Text,
        description_en -> Text,
        provider -> Text,
        channel_url -> Text,
        auth_level -> Text,
        keywords -> Text,
        target_groups -> Text,
        municipalities -> Text,
        built_in -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    oidc_auth_requests (id) {
        id -> Text,
        client_id -> Text,
        params -> Text,
        pushed -> Bool,
        session_id -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    oidc_grants (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Text,
        session_id -> Nullable<Text>,
        scope -> Text,
        nonce -> Nullable<Text>,
        acr -> Text,
        auth_time -> Timestamp,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    oidc_codes (code_hash) {
        code_hash -> Text,
        grant_id -> Text,
        redirect_uri -> Text,
        code_challenge -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    oidc_refresh_tokens (token_hash) {
        token_hash -> Text,
        grant_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    oidc_consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        granted_at -> Timestamp,
    }
}

diesel::table! {
    oidc_revoked_tokens (jti) {
        jti -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    oidc_used_assertions (jti) {
        jti -> Text,
        expires_at -> Timestamp,
    }
}

diesel::joinable!(oidc_codes -> oidc_grants (grant_id));
diesel::joinable!(oidc_consents -> oidc_clients (client_id));
diesel::joinable!(oidc_refresh_tokens -> oidc_grants (grant_id));

diesel::table! {
    saml_participant_names (sp_entity_id, name_id, session_id) {
        session_id -> Text,
        sp_entity_id -> Text,
        name_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    svc_sessions (token_hash) {
        token_hash -> Text,
        service -> Text,
        sub -> Text,
        name -> Text,
        idp_sid -> Nullable<Text>,
        id_token -> Text,
        csrf -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        email -> Nullable<Text>,
        last_seen_at -> Nullable<Timestamp>,
        idp_checked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    notices (id) {
        id -> Text,
        sub -> Text,
        poster -> Text,
        idempotency_key -> Text,
        service -> Text,
        title -> Text,
        body -> Text,
        link -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamp,
        read_at -> Nullable<Timestamp>,
        archived_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    message_outbox (id) {
        id -> Text,
        sender -> Text,
        idempotency_key -> Text,
        recipient_sub -> Text,
        channel -> Text,
        address -> Text,
        language -> Text,
        service -> Text,
        subject -> Text,
        body -> Text,
        link -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    authz_roles (name) {
        name -> Text,
        description -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    authz_role_permissions (role, permission) {
        role -> Text,
        permission -> Text,
    }
}

diesel::table! {
    authz_groups (name) {
        name -> Text,
        description -> Text,
        created_at -> Timestamp,
        external_id -> Nullable<Text>,
    }
}

diesel::table! {
    authz_group_members (group_name, user_id) {
        group_name -> Text,
        user_id -> Text,
    }
}

diesel::table! {
    authz_grants (id) {
        id -> Text,
        user_id -> Nullable<Text>,
        group_name -> Nullable<Text>,
        role -> Nullable<Text>,
        permission -> Nullable<Text>,
        valid_from -> Nullable<Timestamp>,
        valid_until -> Nullable<Timestamp>,
        granted_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    authz_state (id) {
        id -> Integer,
        generation -> BigInt,
    }
}

diesel::table! {
    saml_sps (entity_id) {
        entity_id -> Text,
        metadata_xml -> Text,
        source_url -> Nullable<Text>,
        aggregate_url -> Nullable<Text>,
        valid_until -> Nullable<Timestamp>,
        fetched_at -> Timestamp,
        require_signed_requests -> Bool,
        sign_response -> Bool,
        sign_assertion -> Bool,
        encrypt_assertions -> Bool,
        name_id_format -> Text,
        attributes -> Text,
        allow_national_id -> Bool,
        release_permissions -> Text,
        enabled -> Bool,
        left_aggregate_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    saml_aggregates (url) {
        url -> Text,
        cert_pem -> Text,
        valid_until -> Nullable<Timestamp>,
        fetched_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    saml_replay (replay_key) {
        replay_key -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    saml_participants (session_id, sp_entity_id) {
        session_id -> Text,
        sp_entity_id -> Text,
        name_id -> Text,
        name_id_format -> Text,
        session_index -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    saml_logouts (id) {
        id -> Text,
        state -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    res_units (id) {
        id -> Text,
        name -> Text,
        municipality_code -> Text,
        street_address -> Text,
        postal_code -> Text,
        city -> Text,
        contact -> Text,
        latitude -> Nullable<Double>,
        longitude -> Nullable<Double>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    res_resources (id) {
        id -> Text,
        unit_id -> Text,
        kind -> Text,
        name_fi -> Text,
        name_sv -> Text,
        name_en -> Text,
        description -> Text,
        resource_type -> Text,
        purposes -> Text,
        capacity -> Integer,
        equipment -> Text,
        image_url -> Nullable<Text>,
        terms -> Text,
        auth_level -> Text,
        lipas_id -> Nullable<BigInt>,
        slot_minutes -> Integer,
        min_minutes -> Integer,
        max_minutes -> Integer,
        buffer_before -> Integer,
        buffer_after -> Integer,
        advance_min_minutes -> Integer,
        advance_max_days -> Integer,
        max_per_resident -> Integer,
        cancel_hours -> Integer,
        manual_approval -> Bool,
        price_kind -> Text,
        price_cents -> BigInt,
        reduced_price_cents -> Nullable<BigInt>,
        vat_basis_points -> Integer,
        active -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    res_hours (id) {
        id -> Text,
        resource_id -> Text,
        valid_from -> Date,
        valid_until -> Nullable<Date>,
        weekday -> Integer,
        opens_min -> Integer,
        closes_min -> Integer,
    }
}

diesel::table! {
    res_exceptions (resource_id, day) {
        resource_id -> Text,
        day -> Date,
        opens_min -> Nullable<Integer>,
        closes_min -> Nullable<Integer>,
        reason -> Text,
    }
}

diesel::table! {
    res_appt_types (id) {
        id -> Text,
        resource_id -> Text,
        name_fi -> Text,
        name_sv -> Text,
        name_en -> Text,
        minutes -> Integer,
    }
}

diesel::table! {
    res_series (id) {
        id -> Text,
        resource_id -> Text,
        holder -> Text,
        weekday -> Integer,
        start_min -> Integer,
        minutes -> Integer,
        first_day -> Date,
        last_day -> Date,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    res_reservations (id) {
        id -> Text,
        resource_id -> Text,
        sub -> Nullable<Text>,
        kind -> Text,
        series_id -> Nullable<Text>,
        appt_type_id -> Nullable<Text>,
        state -> Text,
        begins_at -> Timestamp,
        ends_at -> Timestamp,
        blocked_from -> Timestamp,
        blocked_until -> Timestamp,
        purpose -> Text,
        price_cents -> BigInt,
        vat_basis_points -> Integer,
        language -> Text,
        message -> Nullable<Text>,
        expires_at -> Nullable<Timestamp>,
        reminded_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    res_outbox (id) {
        id -> Text,
        service -> Text,
        channel -> Text,
        body -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    res_feeds (token_hash) {
        token_hash -> Text,
        kind -> Text,
        sub -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    pay_orders (id) {
        id -> Text,
        reservation_id -> Text,
        sub -> Text,
        provider -> Text,
        amount_cents -> BigInt,
        vat_basis_points -> Integer,
        description -> Text,
        state -> Text,
        transaction_id -> Nullable<Text>,
        href -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        paid_at -> Nullable<Timestamp>,
        refunded_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    testbank_payments (id) {
        id -> Text,
        stamp -> Text,
        reference -> Text,
        amount_cents -> BigInt,
        description -> Text,
        success_url -> Text,
        cancel_url -> Text,
        callback_success -> Nullable<Text>,
        callback_cancel -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(res_resources -> res_units (unit_id));
diesel::joinable!(res_reservations -> res_resources (resource_id));
diesel::allow_tables_to_appear_in_same_query!(
    res_units,
    res_resources,
    res_hours,
    res_exceptions,
    res_appt_types,
    res_series,
    res_reservations,
    res_outbox,
    res_feeds,
    pay_orders,
    testbank_payments
);
