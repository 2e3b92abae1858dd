//! The migration from ONLYOFFICE / R7-Office (issue 14, spec §11): `auth-server import onlyoffice`
//! against a real MariaDB loaded with the upstream schema and rows made with upstream's algorithms
//! (`auth_tests::upstream`), then sign-ins over real HTTP with the upstream passwords, phones,
//! authenticator secrets and backup codes; and `auth-server user import --jsonl`.

use auth_tests::mariadb::Database;
use auth_tests::upstream::{PRE_V12, SCHEMA, WORKED_FIXTURE};

#[test]
fn the_upstream_schema_and_worked_fixture_load_into_mariadb() {
    let Some(db) = Database::create("schema") else { return };
    db.exec(SCHEMA);
    db.exec(WORKED_FIXTURE);
    db.exec(PRE_V12);
}
