//! Residents' calendar feeds: one secret address per resident and booking service, stored as the
//! hash of its token.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::pool::{write_tx, AnyConnection};
use crate::schema::res_feeds;
use crate::DbError;

/// Makes `new_hash` the resident's calendar feed of one booking service (`kind`), replacing that
/// service's earlier feed (the other service's feed stays); true when one was replaced.
pub fn feed_of(
    conn: &mut AnyConnection,
    kind: &str,
    sub: &str,
    new_hash: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    write_tx(conn, |c| {
        let mine = || {
            res_feeds::table
                .filter(res_feeds::kind.eq(kind))
                .filter(res_feeds::sub.eq(sub))
        };
        let replaced = diesel::delete(mine()).execute(c)? > 0;
        diesel::insert_into(res_feeds::table)
            .values((
                res_feeds::token_hash.eq(new_hash),
                res_feeds::kind.eq(kind),
                res_feeds::sub.eq(sub),
                res_feeds::created_at.eq(now),
            ))
            .execute(c)?;
        Ok(replaced)
    })
}

/// Whose feed of the booking service `kind` a token hash opens.
pub fn feed_sub(
    conn: &mut AnyConnection,
    kind: &str,
    hash: &str,
) -> Result<Option<String>, DbError> {
    Ok(res_feeds::table
        .find(hash)
        .filter(res_feeds::kind.eq(kind))
        .select(res_feeds::sub)
        .first(conn)
        .optional()?)
}
