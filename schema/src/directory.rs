//! Service directory rows: the sub-region classification (rows only; parsing and validation live
//! in `kuntalaistili-services`).

use diesel::prelude::*;

use crate::pool::{write_tx, AnyConnection};
use crate::schema::{dir_municipalities, dir_services, dir_seutukunnat};
use crate::DbError;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = dir_seutukunnat)]
pub struct Seutukunta {
    pub code: String,
    pub name_fi: String,
    pub name_sv: String,
    pub source: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = dir_municipalities)]
pub struct Municipality {
    pub code: String,
    pub name_fi: String,
    pub seutukunta_code: String,
}

/// Replaces the whole classification in one transaction (all or nothing).
pub fn replace_classification(
    conn: &mut AnyConnection,
    regions: &[Seutukunta],
    municipalities: &[Municipality],
) -> Result<(), DbError> {
    write_tx(conn, |conn| -> Result<(), DbError> {
        diesel::delete(dir_municipalities::table).execute(conn)?;
        diesel::delete(dir_seutukunnat::table).execute(conn)?;
        // Row by row: diesel's multi-row insert does not compile for the two-backend connection;
        // inside one transaction this takes milliseconds for the ~380 rows.
        for r in regions {
            diesel::insert_into(dir_seutukunnat::table)
                .values(r)
                .execute(conn)?;
        }
        for m in municipalities {
            diesel::insert_into(dir_municipalities::table)
                .values(m)
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Every sub-region by code, and every municipality by code.
pub fn classification(
    conn: &mut AnyConnection,
) -> Result<(Vec<Seutukunta>, Vec<Municipality>), DbError> {
    let regions = dir_seutukunnat::table
        .order(dir_seutukunnat::code.asc())
        .select(Seutukunta::as_select())
        .load(conn)?;
    let municipalities = dir_municipalities::table
        .order(dir_municipalities::code.asc())
        .select(Municipality::as_select())
        .load(conn)?;
    Ok((regions, municipalities))
}

pub fn count_regions(conn: &mut AnyConnection) -> Result<i64, DbError> {
    Ok(dir_seutukunnat::table.count().get_result(conn)?)
}

/// A service in the directory (validated by `kuntalaistili-services`).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = dir_services)]
pub struct Service {
    pub id: String,
    pub name_fi: String,
    pub name_sv: String,
    pub name_en: String,
    pub description_fi: String,
    pub description_sv: String,
    pub description_en: String,
    pub provider: String,
    pub channel_url: String,
    pub auth_level: String,
    /// JSON array of strings.
    pub keywords: String,
    /// JSON array of strings.
    pub target_groups: String,
    /// JSON array of municipality codes; empty: every municipality.
    pub municipalities: String,
    pub built_in: bool,
    pub updated_at: chrono::NaiveDateTime,
}

/// Inserts or replaces services by id, all in one transaction.
pub fn upsert_services(conn: &mut AnyConnection, services: &[Service]) -> Result<(), DbError> {
    write_tx(conn, |conn| -> Result<(), DbError> {
        for s in services {
            diesel::delete(dir_services::table.find(&s.id)).execute(conn)?;
            diesel::insert_into(dir_services::table)
                .values(s)
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Every service, by Finnish name.
pub fn services(conn: &mut AnyConnection) -> Result<Vec<Service>, DbError> {
    Ok(dir_services::table
        .order((dir_services::name_fi.asc(), dir_services::id.asc()))
        .select(Service::as_select())
        .load(conn)?)
}

/// One service by id.
pub fn service(conn: &mut AnyConnection, id: &str) -> Result<Option<Service>, DbError> {
    Ok(dir_services::table
        .find(id)
        .select(Service::as_select())
        .first(conn)
        .optional()?)
}

/// Removes a service; false when there was none.
pub fn delete_service(conn: &mut AnyConnection, id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(dir_services::table.find(id)).execute(conn)? > 0)
}
