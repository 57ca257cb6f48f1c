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
        },
        "demo",
        kuntalaistili_schema::now_utc(),
    )?;
    Ok(true)
}
