//! Known-answer tests. The X-Wing draft's own vectors (`tests/vectors/xwing-draft-06.json`)
//! check the KEM under everything; sealbox's vault vectors (`tests/vectors/vault.json`),
//! master-key seals (`tests/vectors/master.json`) and file vectors
//! (`tests/vectors/sbx1.json`) pin every format in `docs/crypto.md`, and
//! `tests/vectors/decode.py` opens them with an independent implementation.
//!
//! After a deliberate format change, regenerate the vault and file vectors with
//! `SBX_UPDATE_VECTORS=1 cargo test --lib crypto::vectors` and review the diff.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use data_encoding::HEXLOWER;
use hpke::kem::XWing;
use hpke::{Deserializable, Kem, Serializable};
use serde_json::{Value, json};
use uuid::Uuid;

use super::dek::Dek;
use super::envelope::{
    ENCAPSULATED_KEY_LEN, ENCAPSULATION_SEED_LEN, Envelope, EnvelopeContext, GivenBytes, open_dek,
    seal_dek_with_randomness,
};
use super::format::NONCE_LEN;
use super::kek::{Argon2Params, KEK_SALT_LEN, derive_kek};
use super::master_key::MasterKey;
use super::sbx1::header::{NONCE_PREFIX_LEN, SALT_LEN};
use super::sbx1::segment::{key_info, segment_nonce};
use super::sbx1::{
    FileKey, Header, Layout, SegmentDecryptor, decrypt_stream, encrypt_stream_with_header,
};
use super::sealed_seed::{SealedSeed, open_seed, seal_seed_with_nonce, seed_aad};
use super::sealed_value::{
    Binding, SealedValue, ValueContext, open_bound_value, open_value, seal_bound_value_with_nonce,
    seal_value_with_nonce,
};
use super::user_key::{SEED_LEN, UserKeyPair, UserSeed};
use crate::ids::UserId;

const XWING_VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/xwing-draft-06.json"
);
const VAULT_VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/vault.json");
const MASTER_VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/master.json");
const SBX1_VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/sbx1.json");

/// Deliberately tiny Argon2id costs so the vectors derive quickly in any language; real
/// users get `Argon2Params::default()`, and each user's parameters are stored with them.
const VECTOR_ARGON2: Argon2Params = Argon2Params {
    m_cost_kib: 256,
    t_cost: 2,
    p_cost: 1,
};
/// The KV secret of the vectors.
const OBJECT_ID: Uuid = Uuid::from_u128(0x0192f0a0_0000_7000_8000_00000000c0de);
const ORG_ID: Uuid = Uuid::from_u128(0x0192f0a0_0000_7000_8000_0000000000a9);
const FILE_ID: Uuid = Uuid::from_u128(0x0192f0a0_0000_7000_8000_00000000f11e);
const SHARE_ID: Uuid = Uuid::from_u128(0x0192f0a0_0000_7000_8000_000000005a4e);
const TRANSFER_ID: Uuid = Uuid::from_u128(0x0192f0a0_0000_7000_8000_000000007a45);
const TRANSFER_FILE_ID: Uuid = Uuid::from_u128(0x0192f0a0_0000_7000_8000_00000000f22e);
const WEBHOOK_ID: Uuid = Uuid::from_u128(0x0192f0a0_0000_7000_8000_000000000b00);

/// The vector users: name, id, first byte of the counting seed / salt / nonce, and
/// the secret (Bob's is not ASCII: its UTF-8 bytes are used as given, unnormalized).
struct VectorUser {
    name: &'static str,
    id: u128,
    seed_from: u8,
    salt_from: u8,
    nonce_from: u8,
    secret: &'static str,
}

const USERS: [VectorUser; 2] = [
    VectorUser {
        name: "alice",
        id: 0x0192f0a0_0000_7000_8000_0000000a11ce,
        seed_from: 0x00,
        salt_from: 0xa0,
        nonce_from: 0xc0,
        secret: "correct horse battery staple",
    },
    VectorUser {
        name: "bob",
        id: 0x0192f0a0_0000_7000_8000_000000000b0b,
        seed_from: 0x20,
        salt_from: 0xb0,
        nonce_from: 0xd0,
        secret: "Tr0ub4dor&3 \u{fc}n\u{ef}c\u{f6}d\u{e9}",
    },
];

/// The envelopes: recipient (index into [`USERS`]), kind, object, first eseed byte.
const ENVELOPES: [(usize, &str, Uuid, u8); 3] = [
    (0, "kv", OBJECT_ID, 0x40),
    (1, "kv", OBJECT_ID, 0x80),
    (0, "file", FILE_ID, 0x10),
];

/// One binding field of a format 2 value.
enum Bound {
    Id(Uuid),
    Text(&'static str),
}

/// A sealed value of the vectors, under [`dek`].
struct ValueVector {
    kind: &'static str,
    /// 1 or 2.
    format: u8,
    object_id: Uuid,
    version: u64,
    nonce_from: u8,
    binding: &'static [Bound],
    plaintext: &'static str,
}

const ALICE: Uuid = Uuid::from_u128(0x0192f0a0_0000_7000_8000_0000000a11ce);
const BOB: Uuid = Uuid::from_u128(0x0192f0a0_0000_7000_8000_000000000b0b);

/// One value of each kind the server writes under an object's DEK.
const VALUES: [ValueVector; 4] = [
    ValueVector {
        kind: "kv-value",
        format: 2,
        object_id: OBJECT_ID,
        version: 3,
        nonce_from: 0x60,
        binding: &[
            Bound::Id(ORG_ID),
            Bound::Id(ALICE),
            Bound::Text("prod/db-password \u{2713}"),
        ],
        plaintext: "postgres://app:s3cr3t@db.internal/app",
    },
    ValueVector {
        kind: "kv-value",
        format: 1,
        object_id: OBJECT_ID,
        version: 1,
        nonce_from: 0x68,
        binding: &[],
        plaintext: "a value written before format 2",
    },
    ValueVector {
        kind: "file-name",
        format: 2,
        object_id: FILE_ID,
        version: 0,
        nonce_from: 0x70,
        binding: &[
            Bound::Id(ORG_ID),
            Bound::Id(ALICE),
            Bound::Text("application/pdf"),
        ],
        plaintext: "Q3 report \u{2713}.pdf",
    },
    ValueVector {
        kind: "kv-share-alias",
        format: 1,
        object_id: SHARE_ID,
        version: 0,
        nonce_from: 0x78,
        binding: &[],
        plaintext: "Bob's copy",
    },
];

impl ValueVector {
    fn context(&self) -> ValueContext {
        ValueContext {
            kind: self.kind,
            object_id: self.object_id,
            version: self.version,
        }
    }

    fn binding(&self) -> Binding {
        self.binding.iter().fold(Binding::new(), |b, f| match f {
            Bound::Id(id) => b.id(*id),
            Bound::Text(text) => b.text(text),
        })
    }

    fn binding_json(&self) -> Vec<Value> {
        self.binding
            .iter()
            .map(|f| match f {
                Bound::Id(id) => json!({ "id": id.to_string() }),
                Bound::Text(text) => json!({ "utf8": text }),
            })
            .collect()
    }

    /// Seals the value under `dek` with its counting nonce; returns (aad, sealed).
    fn seal(&self, dek: &Dek) -> (Vec<u8>, SealedValue) {
        let nonce = counting::<NONCE_LEN>(self.nonce_from);
        let context = self.context();
        if self.format == 2 {
            let binding = self.binding();
            let sealed = seal_bound_value_with_nonce(
                dek,
                &context,
                &binding,
                self.plaintext.as_bytes(),
                nonce,
            );
            (context.bound_aad(&binding), sealed)
        } else {
            let sealed = seal_value_with_nonce(dek, &context, self.plaintext.as_bytes(), nonce);
            (context.aad(), sealed)
        }
    }

    fn json(&self, dek: &Dek) -> Value {
        let (aad, sealed) = self.seal(dek);
        json!({
            "kind": self.kind,
            "format": self.format,
            "object_id": self.object_id.to_string(),
            "version": self.version,
            "binding": self.binding_json(),
            "nonce": hex(&counting::<NONCE_LEN>(self.nonce_from)),
            "aad": hex(&aad),
            "plaintext_utf8": self.plaintext,
            "sealed": hex(sealed.as_bytes()),
        })
    }
}

/// The server-sealed transfer: its DEK, one file name under it (sent by Bob), and the
/// password gate that holds the DEK once the transfer is finalized.
const TRANSFER_NAME: ValueVector = ValueVector {
    kind: "file-name",
    format: 2,
    object_id: TRANSFER_FILE_ID,
    version: 0,
    nonce_from: 0x88,
    binding: &[
        Bound::Id(ORG_ID),
        Bound::Id(BOB),
        Bound::Text("text/plain; charset=utf-8"),
    ],
    plaintext: "notes.txt",
};
const TRANSFER_PASSWORD: &str = "blue-harbor-\u{e9}t\u{e9}";

fn transfer_dek() -> Dek {
    Dek::from_bytes(counting(0x30))
}

fn gate_context() -> ValueContext {
    ValueContext {
        kind: "transfer-password-gate",
        object_id: TRANSFER_ID,
        version: 1,
    }
}

fn transfer_vectors() -> Value {
    let salt = counting::<KEK_SALT_LEN>(0x90);
    let kek = derive_kek(TRANSFER_PASSWORD.as_bytes(), &salt, &VECTOR_ARGON2).unwrap();
    let kek = Dek::from_bytes(*kek.expose_bytes());
    let nonce = counting::<NONCE_LEN>(0x98);
    let gate = seal_value_with_nonce(&kek, &gate_context(), transfer_dek().expose_bytes(), nonce);
    json!({
        "transfer_id": TRANSFER_ID.to_string(),
        "org_id": ORG_ID.to_string(),
        "sender_id": BOB.to_string(),
        "dek": hex(transfer_dek().expose_bytes()),
        "file_name": TRANSFER_NAME.json(&transfer_dek()),
        "password_gate": {
            "password_utf8": TRANSFER_PASSWORD,
            "salt": hex(&salt),
            "argon2": VECTOR_ARGON2,
            "kek": hex(kek.expose_bytes()),
            "nonce": hex(&nonce),
            "aad": hex(&gate_context().aad()),
            "sealed": hex(gate.as_bytes()),
            "stored": BASE64.encode(gate.as_bytes()),
        },
    })
}

/// `N` bytes counting up from `from` (wrapping), easy to recognise in a hex dump.
fn counting<const N: usize>(from: u8) -> [u8; N] {
    core::array::from_fn(|i| from.wrapping_add(i as u8))
}

fn hex(bytes: &[u8]) -> String {
    HEXLOWER.encode(bytes)
}

fn unhex(value: &Value) -> Vec<u8> {
    HEXLOWER
        .decode(value.as_str().expect("hex string").as_bytes())
        .expect("valid lowercase hex")
}

fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (create it with SBX_UPDATE_VECTORS=1)"));
    serde_json::from_str(&text).expect("vector file is JSON")
}

fn dek() -> Dek {
    Dek::from_bytes(counting(0xe0))
}

/// Computes every vault vector from the fixed inputs above.
fn vault_vectors() -> Value {
    let mut users = Vec::new();
    let mut envelopes = Vec::new();
    for user in &USERS {
        let user_id = UserId::from(Uuid::from_u128(user.id));
        let seed = UserSeed::from_bytes(counting::<SEED_LEN>(user.seed_from));
        let pair = UserKeyPair::from_seed(UserSeed::from_bytes(*seed.expose_bytes()));
        let key = pair.public_key();
        let salt = counting::<KEK_SALT_LEN>(user.salt_from);
        let kek = derive_kek(user.secret.as_bytes(), &salt, &VECTOR_ARGON2).unwrap();
        let nonce = counting::<NONCE_LEN>(user.nonce_from);
        let sealed = seal_seed_with_nonce(&kek, user_id, &seed, nonce);
        users.push(json!({
            "name": user.name,
            "user_id": user_id.to_string(),
            "seed": hex(seed.expose_bytes()),
            "public_key": hex(key.as_bytes()),
            "public_key_ml_kem_768": hex(key.ml_kem_768()),
            "public_key_x25519": hex(key.x25519()),
            "public_key_b64": BASE64.encode(key.x25519()),
            "public_key_kyber_b64": BASE64.encode(key.ml_kem_768()),
            "fingerprint": key.fingerprint(),
            "kek": {
                "secret_utf8": user.secret,
                "secret": hex(user.secret.as_bytes()),
                "salt": hex(&salt),
                "argon2": VECTOR_ARGON2,
                "kek": hex(kek.expose_bytes()),
            },
            "sealed_seed": {
                "nonce": hex(&nonce),
                "aad": hex(&seed_aad(user_id)),
                "sealed": hex(sealed.as_bytes()),
            },
        }));

        for &(_, kind, object_id, eseed_from) in
            ENVELOPES.iter().filter(|e| USERS[e.0].name == user.name)
        {
            let context = EnvelopeContext {
                kind,
                object_id,
                recipient_id: user_id,
            };
            let mut eseed = counting::<ENCAPSULATION_SEED_LEN>(eseed_from);
            let eseed_hex = hex(&eseed);
            let envelope = seal_dek_with_randomness(key, &context, &dek(), &mut eseed);
            // The X-Wing shared secret, so an implementation can check its KEM before HPKE.
            let enc = <XWing as Kem>::EncappedKey::from_bytes(
                &envelope.as_bytes()[1..1 + ENCAPSULATED_KEY_LEN],
            )
            .unwrap();
            let shared_secret = XWing::decap(pair.hpke_private_key(), None, &enc).unwrap();
            envelopes.push(json!({
                "recipient": user.name,
                "kind": context.kind,
                "object_id": context.object_id.to_string(),
                "recipient_id": user_id.to_string(),
                "eseed": eseed_hex,
                "info": hex(&context.info()),
                "shared_secret": hex(&shared_secret.0),
                "envelope": hex(envelope.as_bytes()),
            }));
        }
    }

    let values: Vec<Value> = VALUES.iter().map(|v| v.json(&dek())).collect();

    json!({
        "about": "sealbox vault test vectors. Every byte is described in docs/crypto.md; tests/vectors/decode.py opens them independently. One DEK serves every object here, for brevity (the server makes one per object). Argon2id costs here are deliberately tiny: real users get m=19456 KiB, t=2, p=1, stored per user.",
        "users": users,
        "org_id": ORG_ID.to_string(),
        "dek": hex(dek().expose_bytes()),
        "envelopes": envelopes,
        "values": values,
        "transfer": transfer_vectors(),
    })
}

/// The master key of the master-seal vectors: bytes 00 01 ... 1f.
fn vector_master_key() -> MasterKey {
    MasterKey::from_bytes(core::array::from_fn(|i| i as u8))
}

/// Associated data of a master-key seal: the label, one NUL, then the fields as given.
fn master_aad(label: &str, fields: &[&[u8]]) -> Vec<u8> {
    let mut aad = label.as_bytes().to_vec();
    aad.push(0);
    for field in fields {
        aad.extend_from_slice(field);
    }
    aad
}

/// Purpose, label, associated data, plaintext, and whether the plaintext is text.
type MasterCase = (&'static str, &'static str, Vec<u8>, Vec<u8>, bool);

/// One value of each purpose the server seals with the master key.
fn master_vectors() -> Value {
    let key = vector_master_key();
    let webhook_secret = format!("whsec_{}", BASE64.encode(counting::<32>(0x40)));
    let response =
        r#"{"status":201,"headers":[["content-type","application/json"]],"body":"e30="}"#;
    let scope = format!("user:{ALICE}");
    let cases: Vec<MasterCase> = vec![
        (
            "webhook-secret",
            "sealbox/v1/webhook-secret",
            master_aad("sealbox/v1/webhook-secret", &[WEBHOOK_ID.as_bytes()]),
            webhook_secret.into_bytes(),
            true,
        ),
        (
            "idempotent-response",
            "sealbox/v1/idempotent-response",
            master_aad(
                "sealbox/v1/idempotent-response",
                &[scope.as_bytes(), b"\0", b"retry-7f3a"],
            ),
            response.as_bytes().to_vec(),
            true,
        ),
        (
            "upload-dek",
            "sealbox/v1/upload-dek",
            master_aad("sealbox/v1/upload-dek", &[FILE_ID.as_bytes()]),
            dek().expose_bytes().to_vec(),
            false,
        ),
        (
            "transfer-dek",
            "sealbox/v1/transfer-dek",
            master_aad("sealbox/v1/transfer-dek", &[TRANSFER_ID.as_bytes()]),
            transfer_dek().expose_bytes().to_vec(),
            false,
        ),
        (
            "transfer-message",
            "sealbox/v1/transfer-message",
            master_aad("sealbox/v1/transfer-message", &[TRANSFER_ID.as_bytes()]),
            "Here are the Q3 files \u{2713}".as_bytes().to_vec(),
            true,
        ),
    ];
    let values: Vec<Value> = cases
        .into_iter()
        .enumerate()
        .map(|(i, (purpose, label, aad, plaintext, text))| {
            let nonce = counting::<12>(0x01 + 0x10 * i as u8);
            let sealed = key.seal_with_nonce(&aad, &plaintext, nonce);
            let mut value = json!({
                "purpose": purpose,
                "label": label,
                "aad": hex(&aad),
                "nonce": hex(&nonce),
                "plaintext": hex(&plaintext),
                "sealed": sealed,
            });
            if text {
                value["plaintext_utf8"] = json!(String::from_utf8(plaintext).unwrap());
            }
            value
        })
        .collect();
    json!({
        "about": "Values sealed by the master key, one per purpose the server stores (docs/crypto.md, section Sealed by the master key); tests/vectors/decode.py opens them independently. Ids: webhook, file, transfer and user as in vault.json.",
        "master_key": hex(key.expose_bytes()),
        "key_id": key.id(),
        "seal_key": hex(key.derive("sealbox/v1/master-seal").as_ref()),
        "webhook_id": WEBHOOK_ID.to_string(),
        "file_id": FILE_ID.to_string(),
        "transfer_id": TRANSFER_ID.to_string(),
        "values": values,
    })
}

/// The master-seal vectors computed now equal the committed file, and each opens.
#[test]
fn master_vectors_match_the_committed_file_and_open() {
    let generated = master_vectors();
    if std::env::var_os("SBX_UPDATE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(MASTER_VECTORS, text).unwrap();
    }
    let committed = read_json(MASTER_VECTORS);
    assert!(
        committed == generated,
        "the master-seal vectors changed: a format change must be deliberate; review it and \
         run with SBX_UPDATE_VECTORS=1 to accept it"
    );
    let key = vector_master_key();
    for value in committed["values"].as_array().unwrap() {
        let opened = key
            .open(&unhex(&value["aad"]), value["sealed"].as_str().unwrap())
            .unwrap();
        assert_eq!(hex(&opened), value["plaintext"]);
    }
}

#[test]
fn xwing_draft_06_vectors_pass() {
    let doc = read_json(XWING_VECTORS);
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 3);
    for v in vectors {
        let seed: [u8; SEED_LEN] = unhex(&v["seed"]).try_into().unwrap();
        let pair = UserKeyPair::from_seed(UserSeed::from_bytes(seed));
        assert_eq!(hex(pair.public_key().as_bytes()), v["pk"]);

        let mut eseed = unhex(&v["eseed"]);
        let (ss, ct) = XWing::encap_with_rng(
            pair.public_key().hpke_key(),
            None,
            &mut GivenBytes(&mut eseed),
        )
        .unwrap();
        assert_eq!(hex(&ct.to_bytes()), v["ct"]);
        assert_eq!(hex(&ss.0), v["ss"]);

        let decapsulated = XWing::decap(pair.hpke_private_key(), None, &ct).unwrap();
        assert_eq!(hex(&decapsulated.0), v["ss"]);
    }
}

/// The vault vectors computed now equal the committed file, and the committed bytes open
/// through the public API from the committed inputs alone.
#[test]
fn vault_vectors_match_the_committed_file_and_open() {
    let generated = vault_vectors();
    if std::env::var_os("SBX_UPDATE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(VAULT_VECTORS, text).unwrap();
    }
    let committed = read_json(VAULT_VECTORS);
    assert!(
        committed == generated,
        "the vault vectors changed: a format change must be deliberate; review it and run \
         with SBX_UPDATE_VECTORS=1 to accept it"
    );
    open_all(&committed);
}

fn open_all(doc: &Value) {
    let dek = unhex(&doc["dek"]);
    for user in doc["users"].as_array().unwrap() {
        let user_id: UserId = user["user_id"].as_str().unwrap().parse().unwrap();
        let kek_json = &user["kek"];
        let params: Argon2Params = serde_json::from_value(kek_json["argon2"].clone()).unwrap();
        let salt: [u8; KEK_SALT_LEN] = unhex(&kek_json["salt"]).try_into().unwrap();
        let secret = kek_json["secret_utf8"].as_str().unwrap();
        let kek = derive_kek(secret.as_bytes(), &salt, &params).unwrap();
        let sealed = SealedSeed::from_bytes(unhex(&user["sealed_seed"]["sealed"]));
        let seed = open_seed(&kek, user_id, &sealed).unwrap();
        assert_eq!(hex(seed.expose_bytes()), user["seed"]);
        let pair = UserKeyPair::from_seed(seed);
        assert_eq!(hex(pair.public_key().as_bytes()), user["public_key"]);

        let mine: Vec<&Value> = doc["envelopes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["recipient"] == user["name"])
            .collect();
        assert!(!mine.is_empty());
        for envelope in mine {
            let (_, kind, ..) = ENVELOPES.iter().find(|e| e.1 == envelope["kind"]).unwrap();
            let context = EnvelopeContext {
                kind,
                object_id: envelope["object_id"].as_str().unwrap().parse().unwrap(),
                recipient_id: user_id,
            };
            let opened = open_dek(
                &pair,
                &context,
                &Envelope::from_bytes(unhex(&envelope["envelope"])),
            )
            .unwrap();
            assert_eq!(opened.expose_bytes().as_slice(), dek.as_slice());
        }
    }
    let dek = Dek::from_bytes(dek.as_slice().try_into().unwrap());
    for (value, vector) in doc["values"].as_array().unwrap().iter().zip(&VALUES) {
        open_vector_value(&dek, vector, value);
    }
    let transfer = &doc["transfer"];
    let transfer_key = Dek::from_bytes(unhex(&transfer["dek"]).try_into().unwrap());
    open_vector_value(&transfer_key, &TRANSFER_NAME, &transfer["file_name"]);
    let gate = &transfer["password_gate"];
    let salt: [u8; KEK_SALT_LEN] = unhex(&gate["salt"]).try_into().unwrap();
    let params: Argon2Params = serde_json::from_value(gate["argon2"].clone()).unwrap();
    let kek = derive_kek(
        gate["password_utf8"].as_str().unwrap().as_bytes(),
        &salt,
        &params,
    )
    .unwrap();
    let stored = BASE64.decode(gate["stored"].as_str().unwrap()).unwrap();
    assert_eq!(hex(&stored), gate["sealed"]);
    let opened = open_value(
        &Dek::from_bytes(*kek.expose_bytes()),
        &gate_context(),
        &SealedValue::from_bytes(stored),
    )
    .unwrap();
    assert_eq!(hex(&opened), transfer["dek"]);
}

/// Opens a committed value with the reader its kind uses in the server, and checks that
/// a format 2 value refuses another binding.
fn open_vector_value(dek: &Dek, vector: &ValueVector, value: &Value) {
    let context = ValueContext {
        kind: vector.kind,
        object_id: value["object_id"].as_str().unwrap().parse().unwrap(),
        version: value["version"].as_u64().unwrap(),
    };
    let sealed = SealedValue::from_bytes(unhex(&value["sealed"]));
    assert_eq!(u64::from(sealed.as_bytes()[0]), value["format"]);
    let plaintext = if vector.format == 2 {
        assert!(open_bound_value(dek, &context, &Binding::new(), &sealed).is_err());
        open_bound_value(dek, &context, &vector.binding(), &sealed).unwrap()
    } else {
        open_value(dek, &context, &sealed).unwrap()
    };
    assert_eq!(
        plaintext.as_slice(),
        value["plaintext_utf8"].as_str().unwrap().as_bytes()
    );
}

/// One SBX1 vector file: its id, segment exponent, the first byte of its counting salt and
/// nonce prefix, and its plaintext.
struct FileVector {
    name: &'static str,
    file_id: u128,
    segment_exponent: u8,
    salt_from: u8,
    prefix_from: u8,
    plaintext: FilePlaintext,
}

enum FilePlaintext {
    Utf8(&'static str),
    /// `length` bytes, byte `i` being `i mod 251`: recognisable, and different in every
    /// segment, so a moved segment shows.
    Pattern(usize),
}

impl FilePlaintext {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Utf8(text) => text.as_bytes().to_vec(),
            Self::Pattern(length) => (0..*length).map(|i| (i % 251) as u8).collect(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Self::Utf8(text) => json!({ "utf8": text }),
            Self::Pattern(length) => json!({ "pattern": "i mod 251", "length": length }),
        }
    }
}

const FILES: [FileVector; 4] = [
    FileVector {
        name: "empty",
        file_id: 0x0192f0a0_0000_7000_8000_0000000f0000,
        segment_exponent: 12,
        salt_from: 0x00,
        prefix_from: 0x80,
        plaintext: FilePlaintext::Utf8(""),
    },
    FileVector {
        name: "one-short-segment",
        file_id: 0x0192f0a0_0000_7000_8000_0000000f0001,
        segment_exponent: 16,
        salt_from: 0x20,
        prefix_from: 0x90,
        plaintext: FilePlaintext::Utf8("Hello from sealbox \u{2713}\n"),
    },
    FileVector {
        name: "three-segments",
        file_id: 0x0192f0a0_0000_7000_8000_0000000f0002,
        segment_exponent: 12,
        salt_from: 0x40,
        prefix_from: 0xa0,
        plaintext: FilePlaintext::Pattern(2 * 4096 + 17),
    },
    FileVector {
        name: "full-last-segment",
        file_id: 0x0192f0a0_0000_7000_8000_0000000f0003,
        segment_exponent: 12,
        salt_from: 0x60,
        prefix_from: 0xb0,
        plaintext: FilePlaintext::Pattern(2 * 4096),
    },
];

fn file_dek() -> Dek {
    Dek::from_bytes(counting(0x10))
}

/// Computes every SBX1 vector from the fixed inputs above.
fn sbx1_vectors() -> Value {
    let files: Vec<Value> = FILES
        .iter()
        .map(|file| {
            let file_id = Uuid::from_u128(file.file_id);
            let salt = counting::<SALT_LEN>(file.salt_from);
            let prefix = counting::<NONCE_PREFIX_LEN>(file.prefix_from);
            let header = Header::new(file.segment_exponent, salt, prefix).unwrap();
            let plaintext = file.plaintext.bytes();
            let mut ciphertext = Vec::new();
            let layout = encrypt_stream_with_header(
                plaintext.as_slice(),
                &mut ciphertext,
                &file_dek(),
                file_id,
                &header,
            )
            .unwrap();
            let segments: Vec<Value> = (0..=layout.last_segment())
                .map(|index| {
                    let last = layout.is_last(index);
                    let range = layout.segment_range(index);
                    json!({
                        "index": index,
                        "last": last,
                        "nonce": hex(&segment_nonce(&prefix, index, last)),
                        "plaintext_len": layout.segment_plaintext(index).end
                            - layout.segment_plaintext(index).start,
                        "offset": range.start,
                        "sealed_len": range.end - range.start,
                    })
                })
                .collect();
            json!({
                "name": file.name,
                "file_id": file_id.to_string(),
                "segment_exponent": file.segment_exponent,
                "salt": hex(&salt),
                "nonce_prefix": hex(&prefix),
                "plaintext": file.plaintext.json(),
                "header": hex(&header.to_bytes()),
                "key_info": hex(&key_info(file_id)),
                "payload_key": hex(FileKey::derive(&file_dek(), &salt, file_id).expose_bytes()),
                "plaintext_len": layout.plaintext_len(),
                "segments": segments,
                "ciphertext": hex(&ciphertext),
            })
        })
        .collect();
    json!({
        "about": "sealbox file (SBX1) test vectors. Every byte is described in docs/crypto.md, section Files (SBX1); tests/vectors/decode.py opens them independently. A plaintext is either {\"utf8\": text} or {\"pattern\": \"i mod 251\", \"length\": n}: n bytes, byte i being i mod 251.",
        "dek": hex(file_dek().expose_bytes()),
        "files": files,
    })
}

/// The SBX1 vectors computed now equal the committed file, and each committed ciphertext
/// decrypts, front to back and segment by segment, to its plaintext.
#[test]
fn sbx1_vectors_match_the_committed_file_and_open() {
    let generated = sbx1_vectors();
    if std::env::var_os("SBX_UPDATE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(SBX1_VECTORS, text).unwrap();
    }
    let committed = read_json(SBX1_VECTORS);
    assert!(
        committed == generated,
        "the SBX1 vectors changed: a format change must be deliberate; review it and run \
         with SBX_UPDATE_VECTORS=1 to accept it"
    );
    let dek = Dek::from_bytes(unhex(&committed["dek"]).try_into().unwrap());
    for (file, vector) in committed["files"].as_array().unwrap().iter().zip(&FILES) {
        let file_id: Uuid = file["file_id"].as_str().unwrap().parse().unwrap();
        let ciphertext = unhex(&file["ciphertext"]);
        let plaintext = vector.plaintext.bytes();

        let mut streamed = Vec::new();
        decrypt_stream(ciphertext.as_slice(), &mut streamed, &dek, file_id).unwrap();
        assert_eq!(streamed, plaintext, "{}", vector.name);

        let header = Header::parse(&ciphertext).unwrap();
        let layout = Layout::from_ciphertext_len(&header, ciphertext.len() as u64).unwrap();
        let decryptor = SegmentDecryptor::new(&dek, file_id, &header);
        for index in 0..=layout.last_segment() {
            let range = layout.segment_range(index);
            let sealed = &ciphertext[range.start as usize..range.end as usize];
            let opened = decryptor
                .decrypt_segment(index, sealed, layout.is_last(index))
                .unwrap();
            let expected = layout.segment_plaintext(index);
            assert_eq!(
                opened.as_slice(),
                &plaintext[expected.start as usize..expected.end as usize]
            );
        }
    }
}
