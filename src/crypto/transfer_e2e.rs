//! End-to-end transfers (`docs/crypto.md`, "End-to-end transfers"): what the sending
//! client derives from the transfer key `k` that the server never sees.
//!
//! - `k`: 32 random bytes, used as the DEK of every file of the transfer; it travels only
//!   in the link's fragment, `#k=` || base64url-no-pad(k).
//! - Each file gets a random (v4) client file id; its contents are SBX1 under `k` and
//!   that id.
//! - Its name, as uploaded in the tus `filename` metadata, is base64url-no-pad of a sealed
//!   value under `k`, kind [`NAME_KIND`], object id = the transfer id, version 1, of
//!   `client file id (16 bytes) || UTF-8 base name`. Binding the transfer id means a name
//!   (and with it the file id) cannot be moved to another transfer.

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
