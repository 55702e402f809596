//! Fills a stopped sealbox's database with a share of the `bench/scale.py` instance:
//! 100,000 users in 1,000 organizations of 100 (each with a key pair, two small
//! server-encrypted files and one KV secret), and 1,000,000 audit entries (a tenth in the
//! benchmark's own organization, the rest in the fixture organizations'). `--from` and
//! `--to` say which slice, in percent of that size, this run adds: `--from 0 --to 10`, then
//! `--from 10 --to 50`, and so on.
//!
//! The rows are made by the crate's own code (`service::fixtures` builds them as the
//! services do; `store` inserts them; `store::audit::append` chains the log), in large
//! transactions, so the fill takes seconds where the API would take hours. Every fixture
//! user signs in with `--password` (hashed once, the hash shared) and unlocks their key
//! pair with `--user-secret` (its KEK derived once, shared).
//!
//!     cargo run --release --example scale_fixtures -- --data-dir DIR --from 0 --to 10 \
//!         --bench-org ORG_ID --bench-user USER_ID --password P --user-secret S

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use sealbox::blob::BlobKey;
use sealbox::blob::local::blob_path;
use sealbox::crypto::UserPublicKey;
use sealbox::data_dir::DataDir;
use sealbox::ids::{OrgId, UserId, now_rfc3339};
use sealbox::service::fixtures::{self, SharedKek};
use sealbox::store::audit::{self, AuditEntry};
use sealbox::store::files::File;
use sealbox::store::kv::KvEntry;
use sealbox::store::user_keys::UserKeys;
use sealbox::store::{Store, StoreOptions, files, kv, organizations, user_keys, users};

/// The full instance (100%).
const USERS: u64 = 100_000;
const ORG_SIZE: u64 = 100;
const AUDIT_ENTRIES: u64 = 1_000_000;
/// The share of the audit entries that go to the benchmark's organization.
const BENCH_ORG_AUDIT_SHARE: u64 = 10;
const FILES_PER_USER: usize = 2;
/// Users per transaction: a whole number of organizations.
const BATCH_USERS: u64 = 5_000;

struct Args {
    data_dir: PathBuf,
    from: u64,
    to: u64,
    bench_org: OrgId,
    bench_user: UserId,
    password: String,
    user_secret: String,
}

fn main() {
    let args = parse_args();
    let started = Instant::now();
    let data = DataDir::new(&args.data_dir);
    // Opening the store brings the schema up to date; its threads end with it.
    drop(
        Store::open(
            &data.database(),
            &StoreOptions {
                max_connections: 1,
                busy_timeout: Duration::from_secs(5),
            },
        )
        .expect("open the database"),
    );
    let mut conn = Connection::open(data.database()).expect("open the database");
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
        .expect("set pragmas");

    let password_hash = sealbox::auth::password::hash(&args.password);
    let kek = SharedKek::derive(args.user_secret.as_bytes());
    let first = args.from * USERS / 100;
    let last = args.to * USERS / 100;
    let audit_per_user = AUDIT_ENTRIES / USERS;
    let mut totals = Totals::default();
    let mut start = first;
    while start < last {
        let end = (start + BATCH_USERS).min(last);
        let batch = make_batch(start, end, &kek);
        write_blobs(&data.blobs(), &batch);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        insert_batch(&tx, &batch, &password_hash, &mut totals);
        let entries = (end - start) * audit_per_user;
        append_audit(&tx, &args, &batch, entries, &mut totals);
        tx.commit().expect("commit");
        start = end;
    }
    // No ANALYZE: a real instance has no statistics either, and they would change plans.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    println!(
        "added {} organizations, {} users, {} files, {} KV secrets, {} audit entries \
         ({} to the bench organization) in {:.1} s",
        totals.orgs,
        totals.users,
        totals.files,
        totals.kv,
        totals.audit,
        totals.bench_audit,
        started.elapsed().as_secs_f64()
    );
}

#[derive(Default)]
struct Totals {
    orgs: u64,
    users: u64,
    files: u64,
    kv: u64,
    audit: u64,
    bench_audit: u64,
}

/// One fixture user with everything they own.
struct Fixture {
    n: u64,
    id: UserId,
    keys: UserKeys,
    files: Vec<(File, Vec<u8>)>,
    kv: KvEntry,
}

struct Batch {
    /// The organizations this batch starts (user `n` belongs to organization `n / 100`).
    orgs: Vec<(u64, OrgId)>,
    users: Vec<Fixture>,
}

/// Key pairs, files and secrets of users `start..end`, built on every core: the X-Wing
/// key generations and encapsulations are most of the fill's work.
fn make_batch(start: u64, end: u64, kek: &SharedKek) -> Batch {
    let orgs: Vec<(u64, OrgId)> = (start..end)
        .filter(|n| n % ORG_SIZE == 0)
        .map(|n| (n / ORG_SIZE, OrgId::new()))
        .collect();
    let org_of = |n: u64| {
        let k = n / ORG_SIZE;
        orgs.iter()
            .find(|(index, _)| *index == k)
            .map(|(_, id)| *id)
            .expect("batches hold whole organizations")
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let chunk = (end - start).div_ceil(threads);
    let now = now_rfc3339();
    let users = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (from, to) = (start + t * chunk, (start + (t + 1) * chunk).min(end));
                let (org_of, now) = (&org_of, &now);
                scope.spawn(move || {
                    (from..to)
                        .map(|n| make_user(n, org_of(n), kek, now))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a fixture thread panicked"))
            .collect()
    });
    Batch { orgs, users }
}

fn make_user(n: u64, org: OrgId, kek: &SharedKek, now: &str) -> Fixture {
    let id = UserId::new();
    let (keys, public): (UserKeys, UserPublicKey) = fixtures::user_keys(kek, id, now);
    let files = (0..FILES_PER_USER)
        .map(|f| {
            let content = format!("fixture file {f} of user {n}\n").repeat(4);
            fixtures::server_file(
                org,
                id,
                &public,
                &format!("report-{n}-{f}.txt"),
                "text/plain",
                content.as_bytes(),
                now,
            )
        })
        .collect();
    let value: [u8; 32] = sealbox::crypto::random_bytes();
    let kv = fixtures::kv_entry(org, id, &public, "api-token", &value, now);
    Fixture {
        n,
        id,
        keys,
        files,
        kv,
    }
}

/// Writes each file's SBX1 bytes where the local blob store keeps them. Not synced: a
/// fixture that a crash interrupts is made again.
fn write_blobs(root: &Path, batch: &Batch) {
    for user in &batch.users {
        for (file, bytes) in &user.files {
            let key = BlobKey::new(file.blob_key.clone()).expect("a valid blob key");
            let path = blob_path(root, &key);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).expect("create a blob shard");
            }
            std::fs::write(&path, bytes).expect("write a blob");
        }
    }
}

fn insert_batch(conn: &Connection, batch: &Batch, password_hash: &str, totals: &mut Totals) {
    let now = now_rfc3339();
    for (k, org) in &batch.orgs {
        organizations::insert(
            conn,
            *org,
            &format!("Scale Org {k}"),
            &format!("scale-org-{k}"),
            &now,
        )
        .expect("insert an organization");
        totals.orgs += 1;
    }
    for user in &batch.users {
        let org = user.kv.org_id;
        let email = format!("user{}@scale.example", user.n);
        users::insert(
            conn,
            &users::NewUser {
                id: user.id,
                email: &email,
                display_name: &format!("Scale User {}", user.n),
                password_hash: Some(password_hash),
                is_instance_admin: false,
                default_org_id: Some(org),
                now: &now,
            },
        )
        .expect("insert a user");
        let role = if user.n % ORG_SIZE == 0 {
            "owner"
        } else {
            "member"
        };
        organizations::add_member(conn, org, user.id, role, &now).expect("add a member");
        user_keys::insert(conn, &user.keys).expect("insert keys");
        for (file, _) in &user.files {
            files::insert(conn, file).expect("insert a file");
            totals.files += 1;
        }
        kv::insert(conn, &user.kv).expect("insert a KV secret");
        totals.kv += 1;
        totals.users += 1;
    }
}

/// Appends `count` entries through the log's own append (which chains them): a tenth to
/// the benchmark's organization, by its user, the rest spread over this batch's
/// organizations, by their users, as sign-ins, uploads and secret writes.
fn append_audit(conn: &Connection, args: &Args, batch: &Batch, count: u64, totals: &mut Totals) {
    const ACTIONS: [(&str, &str); 4] = [
        ("auth.login", "session"),
        ("file.uploaded", "file"),
        ("kv.created", "kv"),
        ("member.added", "user"),
    ];
    let bench_org = args.bench_org.to_string();
    let bench_user = args.bench_user.to_string();
    for i in 0..count {
        let (action, target_type) = ACTIONS[(i % ACTIONS.len() as u64) as usize];
        let to_bench = i % BENCH_ORG_AUDIT_SHARE == 0;
        let (actor, org) = if to_bench {
            (bench_user.clone(), bench_org.clone())
        } else {
            let user = &batch.users[(i as usize) % batch.users.len()];
            (user.id.to_string(), user.kv.org_id.to_string())
        };
        let target = uuid::Uuid::now_v7().to_string();
        let ip = format!("10.0.{}.{}", (i / 250) % 250, i % 250 + 1);
        let request = uuid::Uuid::now_v7().to_string();
        let entry = AuditEntry {
            actor_user_id: Some(actor),
            action,
            target_type: Some(target_type),
            target_id: Some(target),
            org_id: Some(org),
            ip: Some(&ip),
            user_agent: Some("scale-fixtures"),
            request_id: Some(&request),
            outcome: "success",
            details: serde_json::json!({"fixture": true}),
        };
        audit::append(conn, &entry, &now_rfc3339()).expect("append an audit entry");
        totals.audit += 1;
        if to_bench {
            totals.bench_audit += 1;
        }
    }
}

fn parse_args() -> Args {
    let mut raw = std::env::args().skip(1);
    let (mut data_dir, mut from, mut to) = (None, None, None);
    let (mut bench_org, mut bench_user, mut password, mut user_secret) = (None, None, None, None);
    while let Some(flag) = raw.next() {
        let value = raw
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--data-dir" => data_dir = Some(PathBuf::from(value)),
            "--from" => from = value.parse().ok(),
            "--to" => to = value.parse().ok(),
            "--bench-org" => bench_org = value.parse().ok(),
            "--bench-user" => bench_user = value.parse().ok(),
            "--password" => password = Some(value),
            "--user-secret" => user_secret = Some(value),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let args = Args {
        data_dir: data_dir.unwrap_or_else(|| usage("--data-dir is required")),
        from: from.unwrap_or_else(|| usage("--from: a percentage")),
        to: to.unwrap_or_else(|| usage("--to: a percentage")),
        bench_org: bench_org.unwrap_or_else(|| usage("--bench-org: an organization id")),
        bench_user: bench_user.unwrap_or_else(|| usage("--bench-user: a user id")),
        password: password.unwrap_or_else(|| usage("--password is required")),
        user_secret: user_secret.unwrap_or_else(|| usage("--user-secret is required")),
    };
    // Slices start and end on whole batches of whole organizations.
    if args.from >= args.to || args.to > 100 || !(args.from * USERS / 100).is_multiple_of(ORG_SIZE)
    {
        usage("--from and --to: percentages, from < to <= 100");
    }
    args
}

fn usage(problem: &str) -> ! {
    eprintln!("scale_fixtures: {problem}");
    eprintln!(
        "usage: scale_fixtures --data-dir DIR --from PCT --to PCT --bench-org ORG_ID \
         --bench-user USER_ID --password P --user-secret S"
    );
    std::process::exit(2)
}
