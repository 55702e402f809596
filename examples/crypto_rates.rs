//! Raw single-core rates of the crypto a KV PUT and GET run, for `bench/kv.py` to print
//! beside the HTTP numbers: X-Wing encapsulation (`seal_dek`: HPKE seal of a fresh DEK, one
//! per PUT without `X-User-Secret`), decapsulation (`open_dek`, one per GET) and AES-256-GCM
//! of a 1 KiB value (`seal_value`/`open_value`). One `name value` line per measurement.
//!
//!     cargo run --release --example crypto_rates [-- seconds]

use std::hint::black_box;
use std::time::{Duration, Instant};

use sealbox::crypto::{
    Dek, EnvelopeContext, UserKeyPair, ValueContext, open_dek, open_value, seal_dek, seal_value,
};
use sealbox::ids::UserId;

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("seconds per measurement, a number"))
        .unwrap_or(2.0);
    let budget = Duration::from_secs_f64(seconds);

    let pair = UserKeyPair::generate();
    let public_key = pair.public_key().clone();
    let envelope_ctx = EnvelopeContext {
        kind: "kv",
        object_id: uuid::Uuid::now_v7(),
        recipient_id: UserId::new(),
    };
    let value_ctx = ValueContext {
        kind: "kv-value",
        object_id: uuid::Uuid::now_v7(),
        version: 1,
    };

    // Encapsulation as a PUT does it: a fresh DEK sealed to the owner's public key.
    report(
        "xwing_encapsulate_per_s",
        rate(budget, || {
            black_box(seal_dek(&public_key, &envelope_ctx, &Dek::generate()));
        }),
    );

    let envelope = seal_dek(&public_key, &envelope_ctx, &Dek::generate());
    report(
        "xwing_decapsulate_per_s",
        rate(budget, || {
            black_box(open_dek(&pair, &envelope_ctx, &envelope).expect("the envelope opens"));
        }),
    );

    let dek = Dek::generate();
    let value = vec![0x5a_u8; 1024];
    report(
        "aes256gcm_seal_1kib_per_s",
        rate(budget, || {
            black_box(seal_value(&dek, &value_ctx, black_box(&value)));
        }),
    );

    let sealed = seal_value(&dek, &value_ctx, &value);
    report(
        "aes256gcm_open_1kib_per_s",
        rate(budget, || {
            black_box(open_value(&dek, &value_ctx, &sealed).expect("the value opens"));
        }),
    );
}

/// Operations per second of `op` run on this thread for about `budget`, after a short
/// warm-up; the clock is read once per batch so it does not weigh on fast operations.
fn rate(budget: Duration, mut op: impl FnMut()) -> f64 {
    let warm_up = Instant::now();
    while warm_up.elapsed() < budget / 10 {
        op();
    }
    let start = Instant::now();
    let mut count: u64 = 0;
    let mut batch: u64 = 1;
    loop {
        for _ in 0..batch {
            op();
        }
        count += batch;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            return count as f64 / elapsed.as_secs_f64();
        }
        // Aim for batches of about 10 ms.
        let per_op = elapsed.as_secs_f64() / count as f64;
        batch = ((0.01 / per_op) as u64).clamp(1, 1 << 20);
    }
}

fn report(name: &str, per_second: f64) {
    println!("{name} {per_second:.1}");
}
