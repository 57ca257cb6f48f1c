//! Storage: both backends get the same tables and columns, and every down.sql undoes its up.sql.

use kuntalaistili_schema::pool::describe_tables;
use kuntalaistili_schema::{Db, PoolOptions};
use kuntalaistili_tests::{Backend, TestDb};

fn migrated(b: Backend) -> (TestDb, Db) {
    let t = TestDb::new(b);
    let db = Db::connect(&t.url, &PoolOptions::default()).unwrap();
    db.migrate().unwrap();
    (t, db)
}

#[test]
fn both_backends_have_the_same_tables_and_columns() {
    let (_a, lite) = migrated(Backend::Sqlite);
    let (_b, pg) = migrated(Backend::Postgres);
    let lite_tables = describe_tables(&mut lite.conn().unwrap()).unwrap();
    let pg_tables = describe_tables(&mut pg.conn().unwrap()).unwrap();
    assert!(lite_tables.iter().any(|(t, _)| t == "users"));
    assert_eq!(lite_tables, pg_tables);
}

#[test]
fn migrations_revert_cleanly_and_reapply() {
    for b in [Backend::Sqlite, Backend::Postgres] {
        let (_t, db) = migrated(b);
        let reverted = db.revert_all().unwrap();
        assert!(!reverted.is_empty());
        assert_eq!(
            describe_tables(&mut db.conn().unwrap()).unwrap(),
            vec![],
            "{b:?}: down.sql leaves tables behind"
        );
        assert!(!db.migrate().unwrap().is_empty());
        assert!(
            db.migrate().unwrap().is_empty(),
            "{b:?}: second migrate is a no-op"
        );
    }
}

#[test]
fn unsupported_urls_are_refused() {
    assert!(Db::connect("mysql://x", &PoolOptions::default()).is_err());
    assert!(Db::connect("sqlite://", &PoolOptions::default()).is_err());
}
