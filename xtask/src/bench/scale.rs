//! The scale phase's data (issue 18): a real portal's worth of rows under the same scenarios — N users,
//! N live tokens and 10 × N audit events — seeded into the bench's store while the server is stopped.
//!
//! The users go through the product's own path, `auth-server user import --jsonl` with pre-made
//! argon2id PHC strings at the production cost (the path a migration takes, so its rate is worth
//! reporting, and the rows are exactly what the server writes). Tokens and audit events have no such
//! path: a token only comes from a login, which costs one argon2id verification (a million of them
//! would take hours on two cores), and audit events only come from requests. So those rows are written
//! straight into the store's tables, in the column encodings the stores document (instants as i64
//! nanoseconds, token hashes as the SHA-256 of the token's text, computed with auth-core's own
//! functions); the tokens are real ones whose texts the generator knows, so `self_spread` can present
//! them. Nothing here runs while the server does.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use auth_core::password::{Argon2Hasher, BlockingHasher as _, HashParams};
use auth_core::ports::Rng;

use super::server::{Server, Store};
use super::workloads::User;

/// The password every scale user has (one shared PHC string: the hash cost is per verification).
const PASSWORD: &str = "bench-scale-password";
/// Audit events per user.
pub(crate) const AUDIT_PER_USER: usize = 10;
/// Tokens presented round-robin by `self_spread`.
pub(crate) const SPREAD_TOKENS: usize = 10_000;
/// Rows per statement when tokens are sent from here.
const TOKEN_BATCH: usize = 10_000;
/// Users whose audit events one statement writes.
const AUDIT_BATCH_USERS: i64 = 100_000;

/// What seeding made and how long each part took.
pub(crate) struct Seeded {
    pub(crate) users: usize,
    pub(crate) import_secs: f64,
    pub(crate) tokens: u64,
    pub(crate) token_secs: f64,
    pub(crate) audit_events: u64,
    pub(crate) audit_secs: f64,
    /// `VACUUM ANALYZE` on PostgreSQL after the bulk load (so autovacuum does not run during the
    /// scenarios); zero on SQLite.
    pub(crate) vacuum_secs: f64,
    pub(crate) db_bytes: u64,
    /// Token texts for `self_spread`, spread over the whole range.
    pub(crate) spread_tokens: Vec<String>,
}

/// The scale user number `i`.
pub(crate) fn user(i: usize, host: &str) -> User {
    User {
        email: format!("scale{i}@example.com"),
        password: PASSWORD.to_owned(),
        host: host.to_owned(),
    }
}

/// `n` users spread evenly over the `total` scale users (so their rows are far apart).
pub(crate) fn spread_users(n: usize, total: usize, host: &str) -> Vec<User> {
    let step = (total / n.max(1)).max(1);
    (0..n.min(total)).map(|k| user(k * step + step / 2, host)).collect()
}

/// The text of seeded token `i` (32 bytes derived from `i`, written as the server writes tokens).
fn token_text(i: usize) -> String {
    let bytes = auth_core::token::hash(&format!("bench-scale-token-{i}"));
    auth_core::token::encode(&bytes).expose().to_owned()
}

/// The public id of seeded token `i` (what the sessions list shows). The server draws random ids
/// below 2^53 and retries on a clash with the unique index; the seeded ones are simply 1, 2, …,
/// as migration 0005 numbers the tokens it finds, so they cannot clash with each other.
fn token_id(i: usize) -> anyhow::Result<i64> {
    Ok(i64::try_from(i)? + 1)
}

/// Salts for the one PHC string every line shares: any bytes do for a benchmark.
struct Counter(std::sync::atomic::AtomicU8);

impl Rng for Counter {
    fn fill(&self, buf: &mut [u8]) {
        for b in buf {
            *b = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Seeds `n` users of portal `host`, a token each and ten audit events each.
pub(crate) fn seed(server: &Server, store: Store, n: usize, host: &str) -> anyhow::Result<Seeded> {
    // 1. Users, through the CLI.
    println!("[scale] writing {n} pre-hashed JSONL users …");
    let argon = Argon2Hasher::new(HashParams::default(), Arc::new(Counter(0.into())))?;
    let phc = argon.hash(&PASSWORD.into())?;
    let file = server.data_dir().join("scale-users.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&file)?);
    for i in 0..n {
        writeln!(
            w,
            r#"{{"email":"scale{i}@example.com","first_name":"Scale","last_name":"User {i}","password_hash":"{}"}}"#,
            phc.as_str()
        )?;
    }
    w.flush()?;
    drop(w);
    println!("[scale] auth-server user import --jsonl ({n} users) …");
    let t = Instant::now();
    let path = file.display().to_string();
    let out =
        server.admin_output(&["user", "import", "--jsonl", &path, "--portal", host, "--json"])?;
    let import_secs = t.elapsed().as_secs_f64();
    std::fs::remove_file(&file)?;
    let report: serde_json::Value =
        serde_json::from_str(&out).context("the import report is not JSON")?;
    let created = report["counts"]["users"]["created"].as_u64().unwrap_or(0);
    anyhow::ensure!(created == n as u64, "imported {created} of {n} users: {report}");
    println!(
        "[scale] {n} users in {import_secs:.1} s = {:.0} users/s",
        n as f64 / import_secs.max(1e-9)
    );

    // 2. Tokens and 3. audit events, straight into the tables.
    let now = now_nanos();
    let expires = now.saturating_add(30 * 24 * 3600 * 1_000_000_000);
    let mut seeded = match store {
        Store::Sqlite => sqlite(&server.data_dir().join("auth.db"), n, now, expires)?,
        Store::Postgres => {
            let url = server.database_url().context("no database URL")?.to_owned();
            postgres(&url, n, now, expires)?
        }
    };
    seeded.import_secs = import_secs;
    let k = SPREAD_TOKENS.min(n);
    let step = (n / k.max(1)).max(1);
    seeded.spread_tokens = (0..k).map(|j| token_text(j * step)).collect();
    Ok(seeded)
}

fn empty(users: usize) -> Seeded {
    Seeded {
        users,
        import_secs: 0.0,
        tokens: 0,
        token_secs: 0.0,
        audit_events: 0,
        audit_secs: 0.0,
        vacuum_secs: 0.0,
        db_bytes: 0,
        spread_tokens: Vec::new(),
    }
}

fn sqlite(db: &Path, n: usize, now: i64, expires: i64) -> anyhow::Result<Seeded> {
    let mut out = empty(n);
    let mut conn = rusqlite::Connection::open(db)?;
    // Bench data need not survive a power cut; the server's own connections keep `FULL`.
    conn.pragma_update(None, "synchronous", "OFF")?;
    let first: i64 = conn.query_row(
        "SELECT min(seq) FROM users WHERE email_lower = 'scale0@example.com'",
        [],
        |r| r.get(0),
    )?;
    println!("[scale] {n} tokens …");
    let t = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare(
            "INSERT INTO tokens (hash, user, portal, issued_at, expires_at, id, last_used_at) \
             SELECT ?1, id, portal, ?2, ?3, ?5, ?2 FROM users WHERE seq = ?4",
        )?;
        for i in 0..n {
            let hash = auth_core::token::hash(&token_text(i));
            let seq = first + i64::try_from(i)?;
            let id = token_id(i)?;
            out.tokens +=
                st.execute(rusqlite::params![hash.as_slice(), now, expires, seq, id])? as u64;
        }
    }
    tx.commit()?;
    out.token_secs = t.elapsed().as_secs_f64();
    println!("[scale] {} tokens in {:.1} s", out.tokens, out.token_secs);

    println!("[scale] {} audit events …", n * AUDIT_PER_USER);
    let t = Instant::now();
    let last = first + i64::try_from(n)? - 1;
    let mut from = first;
    while from <= last {
        let to = (from + AUDIT_BATCH_USERS - 1).min(last);
        // Ten events a user, a second apart going back from now, alternating success and failure.
        out.audit_events += conn.execute(
            "WITH g(n) AS (VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)) \
             INSERT INTO audit (at, portal, user, login, action, ip, user_agent, reason) \
             SELECT ?1 - g.n * 1000000000, u.portal, u.id, u.email, \
                    CASE WHEN g.n % 2 = 0 THEN 1010 ELSE 1013 END, \
                    '10.0.' || (u.seq % 250) || '.' || g.n, 'auth-bench', NULL \
             FROM users u, g WHERE u.seq BETWEEN ?2 AND ?3",
            rusqlite::params![now, from, to],
        )? as u64;
        from = to + 1;
    }
    out.audit_secs = t.elapsed().as_secs_f64();
    println!("[scale] {} audit events in {:.1} s", out.audit_events, out.audit_secs);
    // Fold the WAL back into the file, so the size is the database's and the server starts clean.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    out.db_bytes = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(p).ok().map(|m| m.len())
        })
        .sum();
    Ok(out)
}

fn postgres(url: &str, n: usize, now: i64, expires: i64) -> anyhow::Result<Seeded> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut out = empty(n);
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        let conn = tokio::spawn(conn);
        let first: i64 = client
            .query_one("SELECT min(seq) FROM users WHERE email_lower = 'scale0@example.com'", &[])
            .await?
            .get(0);
        println!("[scale] {n} tokens …");
        let t = Instant::now();
        let st = client
            .prepare(
                "INSERT INTO tokens (hash, user_id, portal_id, issued_at, expires_at, id, last_used_at) \
                 SELECT h.hash, u.id, u.portal_id, $3, $4, h.id, $3 \
                 FROM unnest($1::bytea[], $2::bigint[], $5::bigint[]) AS h(hash, seq, id) \
                 JOIN users u ON u.seq = h.seq",
            )
            .await?;
        for start in (0..n).step_by(TOKEN_BATCH) {
            let end = (start + TOKEN_BATCH).min(n);
            let hashes: Vec<Vec<u8>> =
                (start..end).map(|i| auth_core::token::hash(&token_text(i)).to_vec()).collect();
            let seqs: Vec<i64> = (start..end).map(|i| first + i as i64).collect();
            let ids = (start..end).map(token_id).collect::<anyhow::Result<Vec<i64>>>()?;
            out.tokens += client.execute(&st, &[&hashes, &seqs, &now, &expires, &ids]).await?;
        }
        out.token_secs = t.elapsed().as_secs_f64();
        println!("[scale] {} tokens in {:.1} s", out.tokens, out.token_secs);

        println!("[scale] {} audit events …", n * AUDIT_PER_USER);
        let t = Instant::now();
        let last = first + i64::try_from(n)? - 1;
        let mut from = first;
        while from <= last {
            let to = (from + AUDIT_BATCH_USERS - 1).min(last);
            out.audit_events += client
                .execute(
                    "INSERT INTO audit (at, portal_id, user_id, login, action, ip, user_agent, reason) \
                     SELECT $1::bigint - g::bigint * 1000000000, u.portal_id, u.id, u.email, \
                            CASE WHEN g % 2 = 0 THEN 1010 ELSE 1013 END, \
                            '10.0.' || (u.seq % 250) || '.' || g, 'auth-bench', NULL \
                     FROM users u, generate_series(0, 9) AS g WHERE u.seq BETWEEN $2 AND $3",
                    &[&now, &from, &to],
                )
                .await?;
            from = to + 1;
        }
        out.audit_secs = t.elapsed().as_secs_f64();
        println!("[scale] {} audit events in {:.1} s", out.audit_events, out.audit_secs);
        let t = Instant::now();
        client.batch_execute("VACUUM ANALYZE").await?;
        out.vacuum_secs = t.elapsed().as_secs_f64();
        println!("[scale] VACUUM ANALYZE in {:.1} s", out.vacuum_secs);
        let size: i64 =
            client.query_one("SELECT pg_database_size(current_database())", &[]).await?.get(0);
        out.db_bytes = u64::try_from(size).unwrap_or(0);
        drop(client);
        let _ = conn.await;
        anyhow::Ok(out)
    })
}

/// How long the scale phase's seeding took in all.
pub(crate) fn seed_secs(s: &Seeded) -> f64 {
    s.import_secs + s.token_secs + s.audit_secs + s.vacuum_secs
}
