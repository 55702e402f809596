//! End-to-end transfers (`docs/crypto.md`, "End-to-end transfers"): what the sending
//! client derives from the transfer key `k` that the server never sees.
//!
//! - `k`: 32 random bytes, used as the DEK of every file of the transfer; it travels only
//!   in the link's fragment, `#k=` || base64url-no-pad(k).
//! - Each file gets a random (v4) client file id; its contents are SBX1 under `k` and
//!   that id.
//! - Its name, as uploaded in the tus `filename` metadata, is base64url-no-pad of a sealed
//!   value under `k`, kind [`NAME_KIND`], object id = the transfer id, version 1, of
//!   `client file id (16 bytes) || UTF-8 relative path`. Binding the transfer id means a
//!   name (and with it the file id) cannot be moved to another transfer. The path is a
//!   file's place in a sent folder (`a/b/c.txt`), or just its name ([`check_relative_path`]
//!   says what a path may be; receivers refuse any other).
//! - The transfer's message is a sealed value under `k`, kind [`MESSAGE_KIND`], object id
//!   = the transfer id, version 1, of the UTF-8 message, base64url-no-pad: the server
//!   stores and returns it as sent and cannot read it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use super::dek::{DEK_LEN, Dek};
use super::sealed_value::{SealedValue, ValueContext, open_value, seal_value};

/// The sealed-value kind of an encrypted file name.
pub const NAME_KIND: &str = "transfer-file-name";
/// The sealed-value version of an encrypted file name.
pub const NAME_VERSION: u64 = 1;
/// The longest encrypted name the server accepts (characters of the tus `filename`).
pub const MAX_SEALED_NAME_CHARS: usize = 1024;
/// Bytes a sealed value adds to its plaintext: format byte, 12-byte nonce, 16-byte tag.
const SEALED_OVERHEAD: usize = 1 + 12 + 16;
/// The longest base name (UTF-8 bytes) whose encrypted form fits [`MAX_SEALED_NAME_CHARS`].
pub const MAX_NAME_BYTES: usize = MAX_SEALED_NAME_CHARS / 4 * 3 - SEALED_OVERHEAD - 16;

/// The sealed-value kind of an end-to-end transfer's message.
pub const MESSAGE_KIND: &str = "transfer-e2e-message";
/// The sealed-value version of an end-to-end message.
pub const MESSAGE_VERSION: u64 = 1;
/// The longest message (UTF-8 bytes) a client seals: 10,000 characters of up to 4 bytes.
pub const MAX_MESSAGE_BYTES: usize = 40_000;
/// The longest sealed message the server accepts: base64url-no-pad of the sealed value of
/// a [`MAX_MESSAGE_BYTES`] message (40,029 bytes, 53,372 characters).
pub const MAX_SEALED_MESSAGE_CHARS: usize = (MAX_MESSAGE_BYTES + SEALED_OVERHEAD) / 3 * 4;

/// Why an encrypted name could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum NameError {
    /// Not base64url, too short, or not valid UTF-8 inside.
    #[error("the encrypted file name is malformed")]
    Malformed,
    /// The wrong key, another transfer's name, or tampered bytes.
    #[error("the file name does not open with this link's key (wrong key or another transfer)")]
    Unauthentic,
}

/// Why an end-to-end message could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum MessageError {
    #[error("the encrypted message is malformed")]
    Malformed,
    #[error("the message does not open with this link's key (the link is wrong)")]
    Unauthentic,
}

/// Why a file's path (the name inside a sealed name) is not a safe relative path.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("{0:?} is not a safe relative path: {1}")]
pub struct PathError(pub String, pub &'static str);

/// Why a `#k=` key could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[error("the link's key (#k=...) is not 32 bytes of base64url")]
pub struct KeyError;

/// A fresh random transfer key.
pub fn generate_key() -> Dek {
    Dek::generate()
}

/// A fresh random client file id (UUID v4 from 16 CSPRNG bytes).
pub fn new_file_id() -> Uuid {
    uuid::Builder::from_random_bytes(super::random_bytes()).into_uuid()
}

/// `k` as it appears after `#k=`: base64url without padding (43 characters).
pub fn encode_key(key: &Dek) -> String {
    URL_SAFE_NO_PAD.encode(key.expose_bytes())
}

/// Reads a key written by [`encode_key`].
pub fn decode_key(text: &str) -> Result<Dek, KeyError> {
    let bytes = zeroize::Zeroizing::new(URL_SAFE_NO_PAD.decode(text).map_err(|_| KeyError)?);
    let array: [u8; DEK_LEN] = bytes.as_slice().try_into().map_err(|_| KeyError)?;
    Ok(Dek::from_bytes(array))
}

fn name_context(transfer_id: Uuid) -> ValueContext {
    ValueContext {
        kind: NAME_KIND,
        object_id: transfer_id,
        version: NAME_VERSION,
    }
}

/// The encrypted name of file `file_id` of transfer `transfer_id`, as uploaded.
pub fn seal_name(key: &Dek, transfer_id: Uuid, file_id: Uuid, name: &str) -> String {
    let mut plaintext = Vec::with_capacity(16 + name.len());
    plaintext.extend_from_slice(file_id.as_bytes());
    plaintext.extend_from_slice(name.as_bytes());
    URL_SAFE_NO_PAD.encode(seal_value(key, &name_context(transfer_id), &plaintext).as_bytes())
}

/// Opens a name sealed by [`seal_name`]: the client file id (for SBX1) and the base name.
pub fn open_name(key: &Dek, transfer_id: Uuid, sealed: &str) -> Result<(Uuid, String), NameError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| NameError::Malformed)?;
    let plaintext = open_value(
        key,
        &name_context(transfer_id),
        &SealedValue::from_bytes(bytes),
    )
    .map_err(|_| NameError::Unauthentic)?;
    if plaintext.len() < 16 {
        return Err(NameError::Malformed);
    }
    let file_id = Uuid::from_slice(&plaintext[..16]).map_err(|_| NameError::Malformed)?;
    let name = std::str::from_utf8(&plaintext[16..]).map_err(|_| NameError::Malformed)?;
    Ok((file_id, name.to_owned()))
}

/// Checks a file's relative path as sealed names carry it and returns its segments:
/// `/`-separated, not empty, no leading `/` (absolute), no empty, `.` or `..` segment, no
/// backslash or NUL, and no drive letter (`C:` as first segment). Senders write only such
/// paths; receivers refuse any other before writing anything.
pub fn check_relative_path(path: &str) -> Result<Vec<&str>, PathError> {
    let refuse = |why| Err(PathError(path.to_owned(), why));
    if path.is_empty() {
        return refuse("it is empty");
    }
    if path.starts_with('/') {
        return refuse("it is absolute");
    }
    if path.contains('\\') {
        return refuse("it holds a backslash");
    }
    if path.contains('\0') {
        return refuse("it holds a NUL byte");
    }
    let segments: Vec<&str> = path.split('/').collect();
    if let Some(first) = segments.first()
        && first.len() >= 2
        && first.as_bytes()[0].is_ascii_alphabetic()
        && first.as_bytes()[1] == b':'
    {
        return refuse("it starts with a drive letter");
    }
    for segment in &segments {
        match *segment {
            "" => return refuse("it has an empty segment"),
            "." | ".." => return refuse("it has a . or .. segment"),
            _ => {}
        }
    }
    Ok(segments)
}

fn message_context(transfer_id: Uuid) -> ValueContext {
    ValueContext {
        kind: MESSAGE_KIND,
        object_id: transfer_id,
        version: MESSAGE_VERSION,
    }
}

/// The sealed message of transfer `transfer_id`, as the client sends it (`sealedMessage`).
pub fn seal_message(key: &Dek, transfer_id: Uuid, message: &str) -> String {
    URL_SAFE_NO_PAD
        .encode(seal_value(key, &message_context(transfer_id), message.as_bytes()).as_bytes())
}

/// Opens a message sealed by [`seal_message`].
pub fn open_message(key: &Dek, transfer_id: Uuid, sealed: &str) -> Result<String, MessageError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| MessageError::Malformed)?;
    let plaintext = open_value(
        key,
        &message_context(transfer_id),
        &SealedValue::from_bytes(bytes),
    )
    .map_err(|_| MessageError::Unauthentic)?;
    String::from_utf8(plaintext.to_vec()).map_err(|_| MessageError::Malformed)
}

/// Whether `text` has the shape of a sealed value as clients send it: base64url without
/// padding of a format 1 sealed value (version byte 1, nonce, tag), at most `max_chars`
/// characters. The server checks this much (it cannot open the value), so a client bug
/// cannot store plaintext under the end-to-end label.
pub fn is_sealed_shape(text: &str, max_chars: usize) -> bool {
    text.len() <= max_chars
        && URL_SAFE_NO_PAD
            .decode(text)
            .is_ok_and(|bytes| bytes.len() >= SEALED_OVERHEAD && bytes[0] == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRANSFER: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);

    #[test]
    fn names_round_trip_with_their_file_id() {
        let key = generate_key();
        let file = new_file_id();
        assert_eq!(file.get_version_num(), 4);
        let sealed = seal_name(&key, TRANSFER, file, "Q3 report (final).pdf");
        assert!(!sealed.contains('=') && !sealed.contains('+') && !sealed.contains('/'));
        assert_eq!(
            open_name(&key, TRANSFER, &sealed).unwrap(),
            (file, "Q3 report (final).pdf".to_owned())
        );
        let empty = seal_name(&key, TRANSFER, file, "");
        assert_eq!(open_name(&key, TRANSFER, &empty).unwrap().1, "");
    }

    #[test]
    fn wrong_key_or_transfer_fails_and_garbage_is_malformed() {
        let key = generate_key();
        let sealed = seal_name(&key, TRANSFER, new_file_id(), "a.txt");
        assert_eq!(
            open_name(&generate_key(), TRANSFER, &sealed),
            Err(NameError::Unauthentic)
        );
        assert_eq!(
            open_name(&key, Uuid::from_u128(2), &sealed),
            Err(NameError::Unauthentic)
        );
        assert_eq!(
            open_name(&key, TRANSFER, "not base64!"),
            Err(NameError::Malformed)
        );
        assert_eq!(
            open_name(&key, TRANSFER, "bmFtZQ"),
            Err(NameError::Unauthentic)
        );
    }

    #[test]
    fn the_longest_name_fits_the_servers_limit() {
        let key = generate_key();
        let name = "é".repeat(MAX_NAME_BYTES / 2);
        let sealed = seal_name(&key, TRANSFER, new_file_id(), &name);
        assert!(sealed.len() <= MAX_SEALED_NAME_CHARS, "{}", sealed.len());
    }

    #[test]
    fn messages_round_trip_and_bind_the_transfer_and_key() {
        let key = generate_key();
        let sealed = seal_message(&key, TRANSFER, "Hallo, voilà les fichiers");
        assert!(is_sealed_shape(&sealed, MAX_SEALED_MESSAGE_CHARS));
        assert_eq!(
            open_message(&key, TRANSFER, &sealed).unwrap(),
            "Hallo, voilà les fichiers"
        );
        assert_eq!(
            open_message(&generate_key(), TRANSFER, &sealed),
            Err(MessageError::Unauthentic)
        );
        assert_eq!(
            open_message(&key, Uuid::from_u128(2), &sealed),
            Err(MessageError::Unauthentic)
        );
        // A name sealed under the same key is not a message (another kind).
        let name = seal_name(&key, TRANSFER, new_file_id(), "a.txt");
        assert_eq!(
            open_message(&key, TRANSFER, &name),
            Err(MessageError::Unauthentic)
        );
        assert_eq!(
            open_message(&key, TRANSFER, "***"),
            Err(MessageError::Malformed)
        );
        let longest = seal_message(&key, TRANSFER, &"€".repeat(MAX_MESSAGE_BYTES / 3));
        assert!(longest.len() <= MAX_SEALED_MESSAGE_CHARS);
        assert_eq!(MAX_SEALED_MESSAGE_CHARS, 53_372);
        for plain in ["hello there", "", "AQ", &"A".repeat(60)] {
            // 60 'A's decode to 45 zero-ish bytes whose first byte is not 1.
            assert!(!is_sealed_shape(plain, MAX_SEALED_MESSAGE_CHARS), "{plain}");
        }
        assert!(!is_sealed_shape(&sealed, sealed.len() - 1));
    }

    #[test]
    fn relative_paths_are_checked() {
        assert_eq!(check_relative_path("a.txt").unwrap(), ["a.txt"]);
        assert_eq!(
            check_relative_path("photos/2026/b c.jpg").unwrap(),
            ["photos", "2026", "b c.jpg"]
        );
        assert_eq!(check_relative_path(".config/x").unwrap(), [".config", "x"]);
        assert_eq!(
            check_relative_path("notes:v2.txt").unwrap(),
            ["notes:v2.txt"]
        );
        for bad in [
            "",
            "/etc/passwd",
            "../evil",
            "a/../../b",
            "a/./b",
            "a//b",
            "a/",
            ".",
            "..",
            "a\\b",
            "C:/x",
            "c:",
            "a\0b",
        ] {
            assert!(check_relative_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_encode_as_43_base64url_characters() {
        let key = generate_key();
        let text = encode_key(&key);
        assert_eq!(text.len(), 43);
        assert_eq!(
            decode_key(&text).unwrap().expose_bytes(),
            key.expose_bytes()
        );
        assert_eq!(decode_key(&text[..42]).unwrap_err(), KeyError);
        assert_eq!(decode_key("!!").unwrap_err(), KeyError);
        assert_eq!(decode_key(&format!("{text}AA")).unwrap_err(), KeyError);
    }

    const VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/transfer_e2e.json"
    );

    /// The end-to-end vectors (`tests/vectors/transfer_e2e.json`) from fixed inputs: sealed
    /// names carrying relative paths, sealed messages, and paths a receiver refuses.
    fn e2e_vectors() -> serde_json::Value {
        use data_encoding::HEXLOWER;
        let key = Dek::from_bytes(std::array::from_fn(|i| 0x40 + i as u8));
        let nonce = |n: u8| -> [u8; 12] { std::array::from_fn(|i| n + i as u8) };
        let names = [
            (
                Uuid::from_u128(0x1111_2222_3333_4444_9555_6666_7777_8888),
                "hello.txt",
            ),
            (
                Uuid::from_u128(0x0123_4567_89ab_4def_8123_4567_89ab_cdef),
                "Reports/2026/Q3 résumé.pdf",
            ),
        ];
        let names: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, (file_id, path))| {
                let mut plaintext = file_id.as_bytes().to_vec();
                plaintext.extend_from_slice(path.as_bytes());
                let n = nonce(0x90 + 0x10 * i as u8);
                let context = name_context(TRANSFER);
                let sealed = super::super::sealed_value::seal_value_with_nonce(
                    &key, &context, &plaintext, n,
                );
                serde_json::json!({
                    "file_id": file_id.to_string(),
                    "path_utf8": path,
                    "nonce": HEXLOWER.encode(&n),
                    "aad": HEXLOWER.encode(&context.aad()),
                    "plaintext": HEXLOWER.encode(&plaintext),
                    "sealed": URL_SAFE_NO_PAD.encode(sealed.as_bytes()),
                })
            })
            .collect();
        let messages: Vec<_> = ["", "Hier sind die Dateien — bis Freitag bitte.\nThanks!"]
            .iter()
            .enumerate()
            .map(|(i, message)| {
                let n = nonce(0xb0 + 0x10 * i as u8);
                let context = message_context(TRANSFER);
                let sealed = super::super::sealed_value::seal_value_with_nonce(
                    &key,
                    &context,
                    message.as_bytes(),
                    n,
                );
                serde_json::json!({
                    "message_utf8": message,
                    "nonce": HEXLOWER.encode(&n),
                    "aad": HEXLOWER.encode(&context.aad()),
                    "sealed": URL_SAFE_NO_PAD.encode(sealed.as_bytes()),
                })
            })
            .collect();
        serde_json::json!({
            "about": "End-to-end transfers (docs/crypto.md, End-to-end transfers): names sealed under the transfer key k (kind transfer-file-name, plaintext client file id || relative path) and messages (kind transfer-e2e-message), both base64url-no-pad as the client sends them, with fixed nonces; refused_paths are names a receiver must refuse. tests/vectors/decode.py opens and reseals them; crypto::transfer_e2e::tests checks the Rust side.",
            "key": HEXLOWER.encode(key.expose_bytes()),
            "key_text": encode_key(&key),
            "transfer_id": TRANSFER.to_string(),
            "names": names,
            "messages": messages,
            "refused_paths": ["../evil", "/etc/passwd", "a/../../b", "a//b", "./a", "a\\b", "C:/Windows/x", "a/\u{0}b", ""],
            "accepted_paths": ["a.txt", "photos/2026/b c.jpg", ".config/app", "notes:v2.txt"],
        })
    }

    /// The committed vectors equal what the code computes now, and open.
    #[test]
    fn e2e_vectors_match_the_committed_file_and_open() {
        let generated = e2e_vectors();
        if std::env::var_os("SBX_UPDATE_VECTORS").is_some() {
            let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
            std::fs::write(VECTORS, text).unwrap();
        }
        let committed: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(VECTORS).expect("create it with SBX_UPDATE_VECTORS=1"),
        )
        .unwrap();
        assert!(
            committed == generated,
            "the end-to-end vectors changed: review and accept with SBX_UPDATE_VECTORS=1"
        );
        let key = decode_key(committed["key_text"].as_str().unwrap()).unwrap();
        for name in committed["names"].as_array().unwrap() {
            let (file_id, path) =
                open_name(&key, TRANSFER, name["sealed"].as_str().unwrap()).unwrap();
            assert_eq!(file_id.to_string(), name["file_id"]);
            assert_eq!(path, name["path_utf8"]);
            assert!(check_relative_path(&path).is_ok());
        }
        for message in committed["messages"].as_array().unwrap() {
            let opened = open_message(&key, TRANSFER, message["sealed"].as_str().unwrap());
            assert_eq!(opened.unwrap(), message["message_utf8"]);
        }
        for path in committed["refused_paths"].as_array().unwrap() {
            assert!(
                check_relative_path(path.as_str().unwrap()).is_err(),
                "{path}"
            );
        }
        for path in committed["accepted_paths"].as_array().unwrap() {
            assert!(
                check_relative_path(path.as_str().unwrap()).is_ok(),
                "{path}"
            );
        }
    }

    #[test]
    fn a_fixed_vector_opens() {
        // seal_name with a fixed nonce, so an independent implementation can check it.
        let key = Dek::from_bytes([7; 32]);
        let file = Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888);
        let mut plaintext = file.as_bytes().to_vec();
        plaintext.extend_from_slice(b"hello.txt");
        let sealed = super::super::sealed_value::seal_value_with_nonce(
            &key,
            &name_context(TRANSFER),
            &plaintext,
            [9; 12],
        );
        let text = URL_SAFE_NO_PAD.encode(sealed.as_bytes());
        assert_eq!(
            open_name(&key, TRANSFER, &text).unwrap(),
            (file, "hello.txt".to_owned())
        );
    }
}
