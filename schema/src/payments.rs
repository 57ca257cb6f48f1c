//! Payment orders (one per payment attempt of a reservation) and the built-in test bank's own
//! payments. An order moves `created → pending → paid → refunded`, or to `cancelled` / `expired`;
//! every move is a conditional update, so a provider's callback that arrives twice changes nothing
//! the second time.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::pool::{write_tx, AnyConnection};
use crate::schema::{pay_orders, testbank_payments};
use crate::DbError;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = pay_orders)]
pub struct PayOrder {
    pub id: String,
    pub reservation_id: String,
    pub sub: String,
    pub provider: String,
    pub amount_cents: i64,
    pub vat_basis_points: i32,
    pub description: String,
    /// `created`, `pending`, `paid`, `refunding` (claimed, at the provider), `refunded`,
    /// `cancelled` or `expired`.
    pub state: String,
    pub transaction_id: Option<String>,
    pub href: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub paid_at: Option<NaiveDateTime>,
    pub refunded_at: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut AnyConnection, o: &PayOrder) -> Result<(), DbError> {
    diesel::insert_into(pay_orders::table)
        .values(o)
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut AnyConnection, id: &str) -> Result<Option<PayOrder>, DbError> {
    Ok(pay_orders::table
        .find(id)
        .select(PayOrder::as_select())
        .first(conn)
        .optional()?)
}

/// The orders of a reservation, newest first.
pub fn of_reservation(
    conn: &mut AnyConnection,
    reservation_id: &str,
) -> Result<Vec<PayOrder>, DbError> {
    Ok(pay_orders::table
        .filter(pay_orders::reservation_id.eq(reservation_id))
        .select(PayOrder::as_select())
        .order(pay_orders::created_at.desc())
        .load(conn)?)
}

/// Records the provider's transaction for a created order (`created → pending`).
pub fn set_pending(
    conn: &mut AnyConnection,
    id: &str,
    transaction_id: &str,
    href: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = diesel::update(
        pay_orders::table
            .filter(pay_orders::id.eq(id))
            .filter(pay_orders::state.eq("created")),
    )
    .set((
        pay_orders::state.eq("pending"),
        pay_orders::transaction_id.eq(transaction_id),
        pay_orders::href.eq(href),
        pay_orders::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Moves an order from one of `from` to `to`; false when it was not in one of them.
pub fn transition(
    conn: &mut AnyConnection,
    id: &str,
    from: &[&str],
    to: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    write_tx(conn, |c| transition_in(c, id, from, to, now))
}

/// Takes over a stale refund claim: only when the order is still `refunding` with the same
/// `updated_at` the caller saw, so two nodes that found it stale never both refund it.
pub fn reclaim_refund(
    conn: &mut AnyConnection,
    id: &str,
    seen_updated_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = diesel::update(
        pay_orders::table
            .filter(pay_orders::id.eq(id))
            .filter(pay_orders::state.eq("refunding"))
            .filter(pay_orders::updated_at.eq(seen_updated_at)),
    )
    .set(pay_orders::updated_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// [`transition`] inside the caller's transaction.
pub fn transition_in(
    conn: &mut AnyConnection,
    id: &str,
    from: &[&str],
    to: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = {
        let c = conn;
        let q = pay_orders::table
            .filter(pay_orders::id.eq(id))
            .filter(pay_orders::state.eq_any(from));
        match to {
            "paid" => diesel::update(q)
                .set((
                    pay_orders::state.eq(to),
                    pay_orders::paid_at.eq(Some(now)),
                    pay_orders::updated_at.eq(now),
                ))
                .execute(c),
            "refunded" => diesel::update(q)
                .set((
                    pay_orders::state.eq(to),
                    pay_orders::refunded_at.eq(Some(now)),
                    pay_orders::updated_at.eq(now),
                ))
                .execute(c),
            _ => diesel::update(q)
                .set((pay_orders::state.eq(to), pay_orders::updated_at.eq(now)))
                .execute(c),
        }
    }?;
    Ok(n == 1)
}

/// Records the provider's transaction of an order that has none yet.
pub fn set_transaction_in(
    conn: &mut AnyConnection,
    id: &str,
    transaction_id: &str,
) -> Result<(), DbError> {
    diesel::update(
        pay_orders::table
            .filter(pay_orders::id.eq(id))
            .filter(pay_orders::transaction_id.is_null()),
    )
    .set(pay_orders::transaction_id.eq(transaction_id))
    .execute(conn)?;
    Ok(())
}

/// Orders that owe money back: paid for a reservation that ended (cancelled, denied), or whose
/// refund was claimed before `stale` and not finished (a failed or interrupted refund).
pub fn refunds_due(
    conn: &mut AnyConnection,
    stale: NaiveDateTime,
) -> Result<Vec<PayOrder>, DbError> {
    use crate::schema::res_reservations;
    let ended: Vec<PayOrder> = pay_orders::table
        .inner_join(res_reservations::table.on(res_reservations::id.eq(pay_orders::reservation_id)))
        .filter(pay_orders::state.eq("paid"))
        .filter(res_reservations::state.eq_any(["cancelled", "denied"]))
        .select(PayOrder::as_select())
        .limit(100)
        .load(conn)?;
    let stuck: Vec<PayOrder> = pay_orders::table
        .filter(pay_orders::state.eq("refunding"))
        .filter(pay_orders::updated_at.lt(stale))
        .select(PayOrder::as_select())
        .limit(100)
        .load(conn)?;
    Ok(ended.into_iter().chain(stuck).collect())
}

/// Whether a paid order is a second payment of its reservation: another order of the same
/// reservation was paid before it (earlier `paid_at`, or the same instant and a smaller id) and
/// is still paid or being refunded. The first payment holds the reservation; the others owe
/// their money back.
pub fn is_duplicate_in(conn: &mut AnyConnection, order: &PayOrder) -> Result<bool, DbError> {
    let Some(paid_at) = order.paid_at else {
        return Ok(false);
    };
    let earlier = pay_orders::table
        .filter(pay_orders::reservation_id.eq(&order.reservation_id))
        .filter(pay_orders::id.ne(&order.id))
        .filter(pay_orders::state.eq_any(["paid", "refunding", "refunded"]))
        .filter(
            pay_orders::paid_at.lt(paid_at).or(pay_orders::paid_at
                .eq(paid_at)
                .and(pay_orders::id.lt(&order.id))),
        )
        .count()
        .get_result::<i64>(conn)?;
    Ok(earlier > 0)
}

/// Paid orders that are second payments of a reservation ([`is_duplicate_in`]), for the sweep.
pub fn duplicates_due(conn: &mut AnyConnection) -> Result<Vec<PayOrder>, DbError> {
    let first = diesel::alias!(pay_orders as first);
    Ok(pay_orders::table
        .inner_join(
            first.on(first
                .field(pay_orders::reservation_id)
                .eq(pay_orders::reservation_id)
                .and(first.field(pay_orders::id).ne(pay_orders::id))),
        )
        .filter(pay_orders::state.eq("paid"))
        .filter(
            first
                .field(pay_orders::state)
                .eq_any(["paid", "refunding", "refunded"]),
        )
        .filter(
            first
                .field(pay_orders::paid_at)
                .lt(pay_orders::paid_at)
                .or(first
                    .field(pay_orders::paid_at)
                    .eq(pay_orders::paid_at)
                    .and(first.field(pay_orders::id).lt(pay_orders::id))),
        )
        .select(PayOrder::as_select())
        .distinct()
        .limit(100)
        .load(conn)?)
}

/// A payment of the built-in test bank.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = testbank_payments)]
pub struct TestbankPayment {
    pub id: String,
    pub stamp: String,
    pub reference: String,
    pub amount_cents: i64,
    pub description: String,
    pub success_url: String,
    pub cancel_url: String,
    pub callback_success: Option<String>,
    pub callback_cancel: Option<String>,
    /// `new`, `ok`, `fail` or `refunded`.
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn testbank_insert(conn: &mut AnyConnection, p: &TestbankPayment) -> Result<(), DbError> {
    diesel::insert_into(testbank_payments::table)
        .values(p)
        .execute(conn)
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => DbError::Conflict("payment stamp"),
            other => DbError::Query(other),
        })?;
    Ok(())
}

pub fn testbank_find(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<TestbankPayment>, DbError> {
    Ok(testbank_payments::table
        .find(id)
        .select(TestbankPayment::as_select())
        .first(conn)
        .optional()?)
}

/// Moves a test bank payment from `from` to `to`; false when it was not in `from`.
pub fn testbank_set(
    conn: &mut AnyConnection,
    id: &str,
    from: &str,
    to: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = diesel::update(
        testbank_payments::table
            .filter(testbank_payments::id.eq(id))
            .filter(testbank_payments::status.eq(from)),
    )
    .set((
        testbank_payments::status.eq(to),
        testbank_payments::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
