//! Raw single-core rates of the crypto a KV PUT and GET run, for `bench/kv.py` to print
//! beside the HTTP numbers: X-Wing encapsulation (`seal_dek`: HPKE seal of a fresh DEK, one
//! per PUT without `X-User-Secret`), decapsulation (`open_dek`, one per GET) and AES-256-GCM
//! of a 1 KiB value (`seal_value`/`open_value`); and for `bench/files.py` and
//! `bench/transfers.py`, the AES-256-GCM throughput of SBX1 file segments (64 KiB) in GB/s
//! (10^9 bytes per second) per core: raw sealing, sealing as uploads push 1 MiB chunks,
//! and opening 1 MiB batches as downloads do. One `name value` line per measurement.
//!
//!     cargo run --release --example crypto_rates [-- seconds]

use std::hint::black_box;
use std::time::{Duration, Instant};

use sealbox::crypto::aead::Aes256Gcm;
use sealbox::crypto::sbx1::{Header, Layout};
use sealbox::crypto::{
    Dek, EnvelopeContext, SegmentDecryptor, SegmentEncryptor, UserKeyPair, ValueContext, open_dek,
    open_value, seal_dek, seal_value,
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

    segment_rates(budget, &dek);
}

/// AES-256-GCM over SBX1's 64 KiB segments, in GB/s of plaintext on one core.
fn segment_rates(budget: Duration, dek: &Dek) {
    const CHUNK: usize = 1 << 20;
    let header = Header::generate();
    let segment = header.segment_size();

    // The primitive alone: one segment sealed in place, again and again.
    let key = Aes256Gcm::new(&[0x42; 32]);
    let mut buffer = vec![0x5a_u8; segment];
    let per_s = rate(budget, || {
        black_box(key.seal_detached(&[0; 12], &[0; 46], &mut buffer));
    });
    report(
        "aes256gcm_seal_segment_gb_per_s",
        per_s * segment as f64 / 1e9,
    );

    // As an upload or `sealbox send` seals: 1 MiB pushed, 16 sealed segments appended.
    let file_id = uuid::Uuid::now_v7();
    let mut encryptor = SegmentEncryptor::new(dek, file_id, &header);
    let chunk = vec![0x5a_u8; CHUNK];
    let mut out = Vec::with_capacity(CHUNK + 1024);
    let per_s = rate(budget, || {
        out.clear();
        encryptor
            .push(&chunk, &mut out)
            .expect("far from 2^32 segments");
        black_box(&out);
    });
    report("sbx1_seal_1mib_gb_per_s", per_s * CHUNK as f64 / 1e9);

    // As a download opens: a 1 MiB batch of sealed segments, copied in (as a read would)
    // and opened in place.
    let mut file = header.to_bytes().to_vec();
    let mut encryptor = SegmentEncryptor::new(dek, file_id, &header);
    encryptor.push(&chunk, &mut file).expect("small");
    encryptor.push(&[1], &mut file).expect("small");
    let layout = Layout::from_ciphertext_len(&header, (file.len() + 1 + 16) as u64)
        .expect("a whole number of segments and a last one");
    let decryptor = SegmentDecryptor::new(dek, file_id, &header);
    let batch = &file[header.to_bytes().len()..];
    let mut work = batch.to_vec();
    let last = (CHUNK / segment - 1) as u32;
    let per_s = rate(budget, || {
        work.copy_from_slice(batch);
        let opened = decryptor
            .decrypt_segments_in_place(&layout, 0, last, &mut work)
            .expect("the batch opens");
        black_box(opened);
    });
    report("sbx1_open_1mib_gb_per_s", per_s * CHUNK as f64 / 1e9);
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
