//! `serve --demo`: a demo resident so a new user can log in at once. Never use in production.

use kuntalaistili_idp::customers::{self, NewPerson};
use kuntalaistili_idp::IdpState;
use kuntalaistili_schema::users;

pub const DEMO_USERNAME: &str = "maija";
pub const DEMO_PASSWORD: &str = "kuntalainen2026";

/// Creates the demo resident unless it exists; returns true when it was created.
pub fn seed(state: &IdpState) -> anyhow::Result<bool> {
    let mut conn = state.db.conn()?;
    if users::find_by_username(&mut conn, DEMO_USERNAME)?.is_some() {
        return Ok(false);
    }
    customers::add(
        &mut conn,
        &state.keys,
        &state.hasher,
        NewPerson {
            username: DEMO_USERNAME.to_owned(),
            password: Some(DEMO_PASSWORD.to_owned()),
            role: "resident".to_owned(),
            given_name: Some("Maija".to_owned()),
            family_name: Some("Meikäläinen".to_owned()),
            email: Some("maija.meikalainen@example.fi".to_owned()),
            phone: Some("+358 40 123 4567".to_owned()),
            street_address: Some("Mannerheimintie 1 A 2".to_owned()),
            postal_code: Some("00100".to_owned()),
            locality: Some("Helsinki".to_owned()),
            country: Some("FI".to_owned()),
            home_municipality: Some("091".to_owned()),
            preferred_language: Some("fi".to_owned()),
            national_id: Some("131052-308T".to_owned()),
            message_channels: None,
            external_id: None,
        },
        "demo",
        kuntalaistili_schema::now_utc(),
    )?;
    Ok(true)
}

/// The demo unit's id (facilities and appointment resources hang under it).
pub const DEMO_UNIT: &str = "demo-kallio";

/// Creates a demo unit with bookable facilities (free and direct, paid by the hour, handled by
/// staff) and an appointment resource with two appointment types, open every day; returns true
/// when it was created.
pub fn seed_bookings(state: &IdpState) -> anyhow::Result<bool> {
    use kuntalaistili_schema::reservations::{self as store, ApptType, Hours, Resource, Unit};
    let mut conn = state.db.conn()?;
    if store::unit(&mut conn, DEMO_UNIT)?.is_some() {
        return Ok(false);
    }
    let now = kuntalaistili_schema::now_utc();
    store::insert_unit(
        &mut conn,
        &Unit {
            id: DEMO_UNIT.into(),
            name: "Kallion monitoimitalo".into(),
            municipality_code: "091".into(),
            street_address: "Helsinginkatu 25".into(),
            postal_code: "00510".into(),
            city: "Helsinki".into(),
            contact: "kallio@example.fi, 09 123 4567".into(),
            latitude: Some(60.1841),
            longitude: Some(24.9497),
            created_at: now,
        },
    )?;
    let base = |id: &str, kind: &str, names: [&str; 3], rtype: &str| Resource {
        id: id.into(),
        unit_id: DEMO_UNIT.into(),
        kind: kind.into(),
        name_fi: names[0].into(),
        name_sv: names[1].into(),
        name_en: names[2].into(),
        description: String::new(),
        resource_type: rtype.into(),
        purposes: "meeting sports".into(),
        capacity: 20,
        equipment: String::new(),
        image_url: None,
        terms: "Jätä tila siistiksi. / Lämna lokalen städad. / Leave the space tidy.".into(),
        auth_level: "weak".into(),
        lipas_id: None,
        slot_minutes: 60,
        min_minutes: 60,
        max_minutes: 180,
        buffer_before: 0,
        buffer_after: 0,
        advance_min_minutes: 60,
        advance_max_days: 90,
        max_per_resident: 3,
        cancel_hours: 24,
        manual_approval: false,
        price_kind: "free".into(),
        price_cents: 0,
        reduced_price_cents: None,
        vat_basis_points: 0,
        active: true,
        created_at: now,
    };
    let mut gym = base(
        "demo-sali",
        "facility",
        ["Liikuntasali", "Idrottssal", "Sports hall"],
        "sports_hall",
    );
    gym.capacity = 40;
    gym.equipment = "Koripallotelineet, äänentoisto".into();
    gym.buffer_after = 15;
    gym.slot_minutes = 60;
    gym.lipas_id = Some(72_438);
    let mut meeting = base(
        "demo-kokoushuone",
        "facility",
        ["Kokoushuone Lokki", "Mötesrum Lokki", "Meeting room Lokki"],
        "meeting_room",
    );
    meeting.capacity = 12;
    meeting.equipment = "Näyttö, videoneuvonta".into();
    meeting.price_kind = "hourly".into();
    meeting.price_cents = 1250;
    meeting.reduced_price_cents = Some(600);
    meeting.vat_basis_points = 2550;
    let mut party = base(
        "demo-juhlatila",
        "facility",
        ["Juhlasali", "Festsal", "Party hall"],
        "party_hall",
    );
    party.capacity = 80;
    party.manual_approval = true;
    party.price_kind = "fixed".into();
    party.price_cents = 8000;
    party.vat_basis_points = 2550;
    party.max_minutes = 360;
    party.cancel_hours = 72;
    let mut advice = base(
        "demo-neuvonta",
        "appointment",
        ["Asukasneuvonta", "Invånarrådgivning", "Resident advice"],
        "service_point",
    );
    advice.slot_minutes = 15;
    advice.min_minutes = 15;
    advice.max_minutes = 60;
    advice.advance_max_days = 30;
    advice.cancel_hours = 4;
    for r in [&gym, &meeting, &party, &advice] {
        store::insert_resource(&mut conn, r)?;
        for weekday in 1..=7 {
            let (opens, closes) = match (r.kind.as_str(), weekday) {
                ("appointment", 6 | 7) => continue,
                ("appointment", _) => (9 * 60, 15 * 60),
                (_, 6 | 7) => (10 * 60, 18 * 60),
                _ => (8 * 60, 21 * 60),
            };
            store::insert_hours(
                &mut conn,
                &Hours {
                    id: format!("{}-{weekday}", r.id),
                    resource_id: r.id.clone(),
                    valid_from: now.date() - chrono::Duration::days(1),
                    valid_until: None,
                    weekday,
                    opens_min: opens,
                    closes_min: closes,
                },
            )?;
        }
    }
    for (id, names, minutes) in [
        (
            "demo-neuvonta-15",
            ["Lyhyt neuvonta", "Kort rådgivning", "Short advice"],
            15,
        ),
        (
            "demo-neuvonta-45",
            ["Laaja neuvonta", "Omfattande rådgivning", "Extended advice"],
            45,
        ),
    ] {
        store::insert_appt_type(
            &mut conn,
            &ApptType {
                id: id.into(),
                resource_id: advice.id.clone(),
                name_fi: names[0].into(),
                name_sv: names[1].into(),
                name_en: names[2].into(),
                minutes,
            },
        )?;
    }
    Ok(true)
}
