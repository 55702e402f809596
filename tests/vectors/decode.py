"""Independent reader of sealbox's vault and file test vectors, written from docs/crypto.md
alone.

It shares no code with the Rust implementation: ML-KEM-768 comes from kyber-py, X25519,
AES-256-GCM, Argon2id and (for SBX1 files) HKDF from `cryptography`, BLAKE3 (the master
key's id and seal key) from `blake3`, and SHA-256, SHA3-256, SHAKE256 and HMAC (for HPKE's
labeled HKDF) from the standard library. It checks the X-Wing draft's vectors, then
derives, opens and reseals everything in vault.json (seeds, envelopes, values in formats 1
and 2, a server-sealed transfer's file name and password gate) and master.json (one
master-key seal per purpose), recomputes the download tokens in tokens.json, decrypts, re-encrypts and damages every file in sbx1.json,
and exits non-zero on the first mismatch.

Usage: python tests/vectors/decode.py [vector directory]   (default: this file's directory)
"""

import base64
import hashlib
import hmac
import json
import sys
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from blake3 import blake3
from kyber_py.ml_kem import ML_KEM_768

FORMAT_V1 = b"\x01"
FORMAT_V2 = b"\x02"
ML_KEM_PK_LEN = 1184
ML_KEM_CT_LEN = 1088
ENC_LEN = 1120
XWING_LABEL = b"\\.//^\\"
SUITE_ID = b"HPKE" + bytes.fromhex("647a") + bytes.fromhex("0001") + bytes.fromhex("0002")


class Mismatch(Exception):
    pass


def expect(what, actual, expected):
    if actual != expected:
        shown = lambda v: v.hex() if isinstance(v, (bytes, bytearray)) else repr(v)
        raise Mismatch(f"{what}: got {shown(actual)}, expected {shown(expected)}")


def h(text):
    return bytes.fromhex(text)


def be16(n):
    return n.to_bytes(2, "big")


def ctx(label, *fields):
    out = label.encode("ascii")
    for field in fields:
        out += be16(len(field)) + field
    return out


def uuid_bytes(text):
    return uuid.UUID(text).bytes


# --- X-Wing (draft-connolly-cfrg-xwing-kem-06) -------------------------------------------


def x25519(scalar, point):
    key = X25519PrivateKey.from_private_bytes(scalar)
    return key.exchange(X25519PublicKey.from_public_bytes(point))


def x25519_base(scalar):
    key = X25519PrivateKey.from_private_bytes(scalar)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def xwing_expand(seed):
    e = hashlib.shake_256(seed).digest(96)
    ek_m, dk_m = ML_KEM_768.key_derive(e[0:64])  # d = e[0:32], z = e[32:64]
    sk_x = e[64:96]
    return ek_m, dk_m, sk_x, x25519_base(sk_x)


def xwing_public_key(seed):
    ek_m, _, _, pk_x = xwing_expand(seed)
    return ek_m + pk_x


def xwing_combiner(ss_m, ss_x, ct_x, pk_x):
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + XWING_LABEL).digest()


def xwing_encapsulate(pk, eseed):
    ek_m, pk_x = pk[:ML_KEM_PK_LEN], pk[ML_KEM_PK_LEN:]
    ek_x = eseed[32:64]
    ct_x = x25519_base(ek_x)
    ss_x = x25519(ek_x, pk_x)
    # Encaps_internal with the given m: kyber-py returns (K, c).
    ss_m, ct_m = ML_KEM_768._encaps_internal(ek_m, eseed[0:32])
    return xwing_combiner(ss_m, ss_x, ct_x, pk_x), ct_m + ct_x


def xwing_decapsulate(seed, ct):
    _, dk_m, sk_x, pk_x = xwing_expand(seed)
    ct_m, ct_x = ct[:ML_KEM_CT_LEN], ct[ML_KEM_CT_LEN:]
    ss_m = ML_KEM_768.decaps(dk_m, ct_m)
    ss_x = x25519(sk_x, ct_x)
    return xwing_combiner(ss_m, ss_x, ct_x, pk_x)


# --- HPKE (RFC 9180) base mode key schedule, HKDF-SHA256 ------------------------------------


def labeled_extract(salt, label, ikm):
    return hmac.new(salt, b"HPKE-v1" + SUITE_ID + label + ikm, hashlib.sha256).digest()


def labeled_expand(prk, label, info, length):
    labeled_info = be16(length) + b"HPKE-v1" + SUITE_ID + label + info
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + labeled_info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def hpke_key_and_nonce(shared_secret, info):
    psk_id_hash = labeled_extract(b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = labeled_extract(shared_secret, b"secret", b"")
    key = labeled_expand(secret, b"key", context, 32)
    base_nonce = labeled_expand(secret, b"base_nonce", context, 12)
    return key, base_nonce


# --- Checks ---------------------------------------------------------------------------------


def check_xwing(path):
    doc = json.loads(path.read_text())
    for i, v in enumerate(doc["vectors"]):
        seed, pk = h(v["seed"]), h(v["pk"])
        expect(f"xwing[{i}] sk", h(v["sk"]), seed)
        expect(f"xwing[{i}] pk", xwing_public_key(seed), pk)
        ss, ct = xwing_encapsulate(pk, h(v["eseed"]))
        expect(f"xwing[{i}] ct", ct, h(v["ct"]))
        expect(f"xwing[{i}] ss", ss, h(v["ss"]))
        expect(f"xwing[{i}] decapsulated ss", xwing_decapsulate(seed, ct), h(v["ss"]))
    return len(doc["vectors"])


def aes_gcm_open(key, nonce, ciphertext, aad, what):
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise Mismatch(f"{what}: AES-GCM tag does not verify") from None


def refuses(key, nonce, ciphertext, aad):
    try:
        AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        return True
    return False


def open_aes_box(key, aad, sealed, what):
    expect(f"{what} version byte", sealed[:1], FORMAT_V1)
    nonce, ciphertext = sealed[1:13], sealed[13:]
    return nonce, aes_gcm_open(key, nonce, ciphertext, aad, what)


def check_user(user):
    name = user["name"]
    seed, pk = h(user["seed"]), h(user["public_key"])
    user_id = uuid_bytes(user["user_id"])

    # Key pair from the seed, the halves (ML-KEM first), the fingerprint.
    expect(f"{name} public key", xwing_public_key(seed), pk)
    expect(f"{name} ML-KEM part", pk[:ML_KEM_PK_LEN], h(user["public_key_ml_kem_768"]))
    expect(f"{name} X25519 part", pk[ML_KEM_PK_LEN:], h(user["public_key_x25519"]))
    expect(f"{name} publicKeyKyberB64", base64.b64encode(pk[:ML_KEM_PK_LEN]).decode(),
           user["public_key_kyber_b64"])
    expect(f"{name} publicKeyB64", base64.b64encode(pk[ML_KEM_PK_LEN:]).decode(),
           user["public_key_b64"])
    fingerprint = hashlib.sha256(b"sealbox/v1/fingerprint" + pk).digest()[:16].hex()
    expect(f"{name} fingerprint", fingerprint, user["fingerprint"])

    # KEK: Argon2id over the secret's UTF-8 bytes as given.
    kek_doc = user["kek"]
    secret = kek_doc["secret_utf8"].encode("utf-8")
    expect(f"{name} secret bytes", secret, h(kek_doc["secret"]))
    params = kek_doc["argon2"]
    kek = Argon2id(
        salt=h(kek_doc["salt"]),
        length=32,
        iterations=params["t_cost"],
        lanes=params["p_cost"],
        memory_cost=params["m_cost_kib"],
    ).derive(secret)
    expect(f"{name} KEK", kek, h(kek_doc["kek"]))

    # Sealed seed: 61 bytes, opened with the derived KEK and the user-bound AAD.
    sealed_doc = user["sealed_seed"]
    sealed = h(sealed_doc["sealed"])
    expect(f"{name} sealed seed length", len(sealed), 61)
    aad = ctx("sealbox/v1/user-key", user_id)
    expect(f"{name} sealed seed AAD", aad, h(sealed_doc["aad"]))
    nonce, opened = open_aes_box(kek, aad, sealed, f"{name} sealed seed")
    expect(f"{name} sealed seed nonce", nonce, h(sealed_doc["nonce"]))
    expect(f"{name} opened seed", opened, seed)
    expect(f"{name} resealed seed", FORMAT_V1 + nonce + AESGCM(kek).encrypt(nonce, seed, aad),
           sealed)
    # A wrong secret must not open it.
    wrong = Argon2id(salt=h(kek_doc["salt"]), length=32, iterations=params["t_cost"],
                     lanes=params["p_cost"], memory_cost=params["m_cost_kib"]).derive(secret + b"!")
    if not refuses(wrong, nonce, sealed[13:], aad):
        raise Mismatch(f"{name}: a wrong secret opened the sealed seed")
    return seed


def check_envelope(envelope, seeds, users_by_name, dek):
    recipient = envelope["recipient"]
    seed = seeds[recipient]
    user = users_by_name[recipient]
    expect(f"envelope to {recipient} recipient id", envelope["recipient_id"], user["user_id"])
    info = ctx(
        "sealbox/v1/envelope",
        envelope["kind"].encode("ascii"),
        uuid_bytes(envelope["object_id"]),
        uuid_bytes(envelope["recipient_id"]),
    )
    expect(f"envelope to {recipient} info", info, h(envelope["info"]))

    sealed = h(envelope["envelope"])
    expect(f"envelope to {recipient} length", len(sealed), 1169)
    expect(f"envelope to {recipient} version byte", sealed[:1], FORMAT_V1)
    enc, ciphertext = sealed[1:1 + ENC_LEN], sealed[1 + ENC_LEN:]

    # Open: decapsulate with the recipient's seed, HPKE key schedule, AES-256-GCM.
    shared_secret = xwing_decapsulate(seed, enc)
    expect(f"envelope to {recipient} shared secret", shared_secret, h(envelope["shared_secret"]))
    key, base_nonce = hpke_key_and_nonce(shared_secret, info)
    opened = aes_gcm_open(key, base_nonce, ciphertext, b"", f"envelope to {recipient}")
    expect(f"envelope to {recipient} DEK", opened, dek)

    # Reseal from the given randomness: the same bytes.
    ss, enc2 = xwing_encapsulate(h(user["public_key"]), h(envelope["eseed"]))
    key2, nonce2 = hpke_key_and_nonce(ss, info)
    resealed = FORMAT_V1 + enc2 + AESGCM(key2).encrypt(nonce2, dek, b"")
    expect(f"envelope to {recipient} resealed", resealed, sealed)

    # Another recipient's id in info must not open it.
    other = ctx("sealbox/v1/envelope", envelope["kind"].encode("ascii"),
                uuid_bytes(envelope["object_id"]), uuid.uuid4().bytes)
    other_key, other_nonce = hpke_key_and_nonce(shared_secret, other)
    if not refuses(other_key, other_nonce, ciphertext, b""):
        raise Mismatch(f"envelope to {recipient} opened with another recipient id")


# Kinds whose values bind where they are stored (format 2), and their binding fields, in
# order, as docs/crypto.md's kinds table gives them. Every other kind is format 1.
BINDING_FIELDS = {
    "kv-value": ("organization id", "owner id", "name"),
    "file-name": ("organization id", "owner id", "content type"),
}


def binding_field(field):
    if "id" in field:
        return uuid_bytes(field["id"])
    return field["utf8"].encode("utf-8")


def check_value(value, dek):
    kind = value["kind"]
    what = f"value {kind} v{value['version']} (format {value['format']})"
    base = (kind.encode("ascii"), uuid_bytes(value["object_id"]),
            value["version"].to_bytes(8, "big"))
    sealed = h(value["sealed"])
    if sealed[:1] == FORMAT_V2:
        if kind not in BINDING_FIELDS:
            raise Mismatch(f"{what}: kind {kind} is never written in format 2")
        bound = [binding_field(f) for f in value["binding"]]
        expect(f"{what} binding fields", len(bound), len(BINDING_FIELDS[kind]))
        aad = ctx("sealbox/v2/value", *base, *bound)
        version = FORMAT_V2
    else:
        expect(f"{what} version byte", sealed[:1], FORMAT_V1)
        expect(f"{what} binding", value["binding"], [])
        aad = ctx("sealbox/v1/value", *base)
        version = FORMAT_V1
    expect(f"{what} AAD", aad, h(value["aad"]))
    nonce, ciphertext = sealed[1:13], sealed[13:]
    opened = aes_gcm_open(dek, nonce, ciphertext, aad, what)
    expect(f"{what} nonce", nonce, h(value["nonce"]))
    plaintext = value["plaintext_utf8"].encode("utf-8")
    expect(f"{what} plaintext", opened, plaintext)
    expect(f"{what} length", len(sealed), len(plaintext) + 29)
    expect(f"{what} resealed", version + nonce + AESGCM(dek).encrypt(nonce, plaintext, aad),
           sealed)
    if version == FORMAT_V2:
        # Another name (a swapped row) and the format 1 AAD (a flipped version byte) fail.
        swapped = ctx("sealbox/v2/value", *base, *bound[:-1], bound[-1] + b"x")
        if not refuses(dek, nonce, ciphertext, swapped):
            raise Mismatch(f"{what} opened under another binding")
        if not refuses(dek, nonce, ciphertext, ctx("sealbox/v1/value", *base)):
            raise Mismatch(f"{what} opened as format 1")


def check_transfer(transfer):
    """A server-sealed transfer: a file name under its DEK, and the password gate."""
    dek = h(transfer["dek"])
    name = transfer["file_name"]
    expect("transfer file name binding",
           [f.get("id") for f in name["binding"][:2]],
           [transfer["org_id"], transfer["sender_id"]])
    check_value(name, dek)

    gate = transfer["password_gate"]
    params = gate["argon2"]
    kek = Argon2id(salt=h(gate["salt"]), length=32, iterations=params["t_cost"],
                   lanes=params["p_cost"], memory_cost=params["m_cost_kib"],
                   ).derive(gate["password_utf8"].encode("utf-8"))
    expect("gate KEK", kek, h(gate["kek"]))
    # Stored as standard base64 text of a format 1 sealed value.
    sealed = base64.b64decode(gate["stored"], validate=True)
    expect("gate stored text", sealed, h(gate["sealed"]))
    expect("gate length", len(sealed), 61)
    aad = ctx("sealbox/v1/value", b"transfer-password-gate", uuid_bytes(transfer["transfer_id"]),
              (1).to_bytes(8, "big"))
    expect("gate AAD", aad, h(gate["aad"]))
    nonce, opened = open_aes_box(kek, aad, sealed, "password gate")
    expect("gate nonce", nonce, h(gate["nonce"]))
    expect("gate opens to the transfer DEK", opened, dek)


# Master-key seals: label, NUL, then the fields (docs/crypto.md, Sealed by the master key).
def master_aad(value, doc):
    label = value["label"].encode("ascii") + b"\x00"
    purpose = value["purpose"]
    if purpose == "webhook-secret":
        return label + uuid_bytes(doc["webhook_id"])
    if purpose == "upload-dek":
        return label + uuid_bytes(doc["file_id"])
    if purpose in ("transfer-dek", "transfer-message"):
        return label + uuid_bytes(doc["transfer_id"])
    if purpose == "idempotent-response":
        # The vectors' request: Alice's session, Idempotency-Key "retry-7f3a".
        return label + b"user:0192f0a0-0000-7000-8000-0000000a11ce" + b"\x00" + b"retry-7f3a"
    raise Mismatch(f"unknown master-seal purpose {purpose}")


def check_master(doc):
    master = h(doc["master_key"])
    key_id = blake3(master, derive_key_context="sealbox/v1/master-key-id").digest()[:4].hex()
    expect("master key id", key_id, doc["key_id"])
    seal_key = blake3(master, derive_key_context="sealbox/v1/master-seal").digest()
    expect("master seal key", seal_key, h(doc["seal_key"]))
    for value in doc["values"]:
        what = f"master seal {value['purpose']}"
        aad = master_aad(value, doc)
        expect(f"{what} AAD", aad, h(value["aad"]))
        version, kid, body = value["sealed"].split(":", 2)
        expect(f"{what} version", version, "v1")
        expect(f"{what} key id", kid, key_id)
        blob = base64.b64decode(body, validate=True)
        nonce, ciphertext = blob[:12], blob[12:]
        expect(f"{what} nonce", nonce, h(value["nonce"]))
        opened = aes_gcm_open(seal_key, nonce, ciphertext, aad, what)
        expect(f"{what} plaintext", opened, h(value["plaintext"]))
        if "plaintext_utf8" in value:
            expect(f"{what} text", opened.decode("utf-8"), value["plaintext_utf8"])
        if purpose_is_json(value):
            json.loads(opened)
        resealed = base64.b64encode(nonce + AESGCM(seal_key).encrypt(nonce, opened, aad))
        expect(f"{what} resealed", f"v1:{key_id}:{resealed.decode()}", value["sealed"])
        if not refuses(seal_key, nonce, ciphertext, aad[:-1] + bytes([aad[-1] ^ 1])):
            raise Mismatch(f"{what} opened with another row's AAD")
    return len(doc["values"])


def purpose_is_json(value):
    return value["purpose"] == "idempotent-response"


# --- Files (SBX1) ---------------------------------------------------------------------------

SBX1_HEADER_LEN = 46
SBX1_TAG_LEN = 16


class Refused(Exception):
    """The reader refused a file: what every damaged file must cause."""


def sbx1_header(exponent, salt, prefix):
    return b"SBX1" + bytes([1, 1, exponent]) + salt + prefix


def sbx1_parse_header(data):
    if len(data) < SBX1_HEADER_LEN:
        raise Refused("shorter than a header")
    if data[0:4] != b"SBX1":
        raise Refused("bad magic")
    if data[4] != 1 or data[5] != 1:
        raise Refused("unknown version or algorithm")
    if not 12 <= data[6] <= 24:
        raise Refused("unsupported segment size exponent")
    return data[6], data[7:39], data[39:46]


def sbx1_payload_key(dek, salt, file_id):
    info = b"sealbox/v1/file" + file_id
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(dek)


def sbx1_nonce(prefix, index, last):
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def sbx1_layout(exponent, file_len):
    """(segment count n, plaintext length P) from the file's length, or Refused."""
    sealed_full = (1 << exponent) + SBX1_TAG_LEN
    body = file_len - SBX1_HEADER_LEN
    if body < SBX1_TAG_LEN:
        raise Refused("impossible length")
    n = -(-body // sealed_full)
    last_sealed = body - (n - 1) * sealed_full
    if n > 2**32 or (n > 1 and last_sealed <= SBX1_TAG_LEN):
        raise Refused("impossible length")
    return n, body - SBX1_TAG_LEN * n


def sbx1_open_segments(data, dek, file_id, first, last):
    """Reads only sealed segments first..=last from the file and opens them."""
    exponent, salt, prefix = sbx1_parse_header(data)
    header = data[:SBX1_HEADER_LEN]
    n, _ = sbx1_layout(exponent, len(data))
    sealed_full = (1 << exponent) + SBX1_TAG_LEN
    aead = AESGCM(sbx1_payload_key(dek, salt, file_id))
    out = b""
    for i in range(first, last + 1):
        start = SBX1_HEADER_LEN + i * sealed_full
        sealed = data[start:min(start + sealed_full, len(data))]
        try:
            out += aead.decrypt(sbx1_nonce(prefix, i, i == n - 1), sealed, header)
        except InvalidTag:
            raise Refused(f"segment {i} does not open") from None
    return out


def sbx1_decrypt(data, dek, file_id):
    exponent, _, _ = sbx1_parse_header(data)
    n, _ = sbx1_layout(exponent, len(data))
    return sbx1_open_segments(data, dek, file_id, 0, n - 1)


def sbx1_read_range(data, dek, file_id, start, end):
    """Plaintext bytes [start, end), opening only the segments they lie in."""
    exponent, _, _ = sbx1_parse_header(data)
    size = 1 << exponent
    first, last = start // size, (end - 1) // size
    opened = sbx1_open_segments(data, dek, file_id, first, last)
    return opened[start - first * size:end - first * size]


def sbx1_encrypt(plaintext, dek, file_id, exponent, salt, prefix):
    header = sbx1_header(exponent, salt, prefix)
    size = 1 << exponent
    segments = [plaintext[i:i + size] for i in range(0, len(plaintext), size)] or [b""]
    aead = AESGCM(sbx1_payload_key(dek, salt, file_id))
    return header + b"".join(
        aead.encrypt(sbx1_nonce(prefix, i, i == len(segments) - 1), segment, header)
        for i, segment in enumerate(segments)
    )


def sbx1_plaintext(spec):
    if "utf8" in spec:
        return spec["utf8"].encode("utf-8")
    expect("plaintext pattern", spec["pattern"], "i mod 251")
    return bytes(i % 251 for i in range(spec["length"]))


def check_file(file, dek):
    name = f"file {file['name']}"
    file_id = uuid_bytes(file["file_id"])
    exponent, salt, prefix = file["segment_exponent"], h(file["salt"]), h(file["nonce_prefix"])
    plaintext = sbx1_plaintext(file["plaintext"])
    data = h(file["ciphertext"])
    size = 1 << exponent
    sealed_full = size + SBX1_TAG_LEN

    # Header, key, lengths and nonces, each from the documented layout.
    header = sbx1_header(exponent, salt, prefix)
    expect(f"{name} header", h(file["header"]), header)
    expect(f"{name} header in the file", data[:SBX1_HEADER_LEN], header)
    expect(f"{name} parsed header", sbx1_parse_header(data), (exponent, salt, prefix))
    expect(f"{name} HKDF info", h(file["key_info"]), b"sealbox/v1/file" + file_id)
    expect(f"{name} payload key", sbx1_payload_key(dek, salt, file_id), h(file["payload_key"]))
    n = max(1, -(-len(plaintext) // size))
    expect(f"{name} plaintext length", file["plaintext_len"], len(plaintext))
    expect(f"{name} file length", len(data), SBX1_HEADER_LEN + len(plaintext) + 16 * n)
    expect(f"{name} layout from length", sbx1_layout(exponent, len(data)), (n, len(plaintext)))
    expect(f"{name} segment count", len(file["segments"]), n)
    for i, segment in enumerate(file["segments"]):
        last = i == n - 1
        expect(f"{name} segment {i} index", segment["index"], i)
        expect(f"{name} segment {i} last", segment["last"], last)
        expect(f"{name} segment {i} nonce", h(segment["nonce"]), sbx1_nonce(prefix, i, last))
        expect(f"{name} segment {i} offset", segment["offset"], SBX1_HEADER_LEN + i * sealed_full)
        held = len(plaintext[i * size:(i + 1) * size])
        expect(f"{name} segment {i} plaintext length", segment["plaintext_len"], held)
        expect(f"{name} segment {i} sealed length", segment["sealed_len"], held + 16)

    # Whole-file decryption, re-encryption to the same bytes, and range reads.
    try:
        expect(f"{name} decrypted", sbx1_decrypt(data, dek, file_id), plaintext)
    except Refused as refusal:
        raise Mismatch(f"{name}: refused ({refusal})") from None
    expect(f"{name} re-encrypted", sbx1_encrypt(plaintext, dek, file_id, exponent, salt, prefix),
           data)
    p = len(plaintext)
    ranges = {(0, p), (0, 1), (p - 1, p), (p // 2, p // 2 + 1), (size - 1, size + 1),
              (size, 2 * size), (1, p - 1)}
    for start, end in sorted(ranges):
        if 0 <= start < end <= p:
            expect(f"{name} range [{start}, {end})",
                   sbx1_read_range(data, dek, file_id, start, end), plaintext[start:end])

    # Damage: every change must be refused.
    segments = [data[SBX1_HEADER_LEN + i * sealed_full:SBX1_HEADER_LEN + (i + 1) * sealed_full]
                for i in range(n)]
    body = lambda parts: header + b"".join(parts)
    damaged = {
        "header only": data[:SBX1_HEADER_LEN],
        "cut inside the last segment": data[:-1],
        "last segment appended again": data + segments[-1],
        "first segment appended": data + segments[0],
    }
    if n > 1:
        damaged["cut at a segment boundary"] = body(segments[:-1])
        damaged["first two segments swapped"] = body([segments[1], segments[0]] + segments[2:])
        damaged["first segment removed"] = body(segments[1:])
        damaged["first segment duplicated"] = body([segments[0]] + segments)
    if n > 2:
        damaged["middle segment removed"] = body([segments[0]] + segments[2:])
    for i in range(SBX1_HEADER_LEN):
        damaged[f"header byte {i} flipped"] = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
    for i in range(n):
        start = SBX1_HEADER_LEN + i * sealed_full
        for at in {start, start + len(segments[i]) - 1, start + len(segments[i]) // 2}:
            damaged[f"segment {i} byte {at} flipped"] = (
                data[:at] + bytes([data[at] ^ 0x80]) + data[at + 1:])
    for what, bad in damaged.items():
        try:
            sbx1_decrypt(bad, dek, file_id)
        except Refused:
            continue
        raise Mismatch(f"{name}: {what} was not refused")
    for what, key, fid in [("another DEK", bytes(32), file_id),
                           ("another file id", dek, uuid.uuid4().bytes)]:
        try:
            sbx1_decrypt(data, key, fid)
        except Refused:
            continue
        raise Mismatch(f"{name}: opened with {what}")


def check_download_token(vector):
    """docs/crypto.md, Download tokens: token = base64url-no-pad(0x02 || id || secret);
    verifier and tkey are HKDF-SHA256 of the secret, salted with the id."""
    token_id, secret = h(vector["id"]), h(vector["secret"])
    raw = bytes([vector["version"]]) + token_id + secret
    expect("download token text", base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
           vector["token"])
    decoded = base64.urlsafe_b64decode(vector["token"] + "=" * (-len(vector["token"]) % 4))
    expect("download token layout", (decoded[:1], decoded[1:17], decoded[17:]),
           (b"\x02", token_id, secret))

    def derive(info):
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=token_id,
                    info=info.encode("ascii")).derive(secret)

    expect("download token verifier", derive("sealbox/v1/download-token/verifier"),
           h(vector["verifier"]))
    expect("download token key", derive("sealbox/v1/download-token/key"), h(vector["tkey"]))


def b64url_decode(text):
    if "=" in text or "+" in text or "/" in text:
        raise Mismatch(f"{text!r} is not base64url without padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def safe_relative_path(path):
    """docs/crypto.md, End-to-end transfers: a name is a relative path with "/"
    separators: not empty, not absolute, no empty, "." or ".." segment, no backslash or
    NUL, no drive letter as its first segment."""
    if path == "" or path.startswith("/") or "\\" in path or "\0" in path:
        return False
    segments = path.split("/")
    first = segments[0]
    if len(first) >= 2 and first[0].isascii() and first[0].isalpha() and first[1] == ":":
        return False
    return all(segment not in ("", ".", "..") for segment in segments)


def check_transfer_e2e(doc):
    """End-to-end transfers: names (client file id || relative path) and messages sealed
    under k as format 1 values bound to the transfer id; k read from its link text."""
    key = b64url_decode(doc["key_text"])
    expect("e2e key text", key, h(doc["key"]))
    expect("e2e key length", len(key), 32)
    transfer_id = uuid_bytes(doc["transfer_id"])
    version = (1).to_bytes(8, "big")
    kinds = [("name", "transfer-file-name", doc["names"]),
             ("message", "transfer-e2e-message", doc["messages"])]
    for what, kind, values in kinds:
        aad = ctx("sealbox/v1/value", kind.encode("ascii"), transfer_id, version)
        for value in values:
            expect(f"e2e {what} AAD", aad, h(value["aad"]))
            sealed = b64url_decode(value["sealed"])
            expect(f"e2e {what} version byte", sealed[:1], FORMAT_V1)
            nonce = sealed[1:13]
            expect(f"e2e {what} nonce", nonce, h(value["nonce"]))
            opened = aes_gcm_open(key, nonce, sealed[13:], aad, f"e2e {what}")
            if what == "name":
                expect("e2e name plaintext", opened, h(value["plaintext"]))
                expect("e2e name file id", opened[:16], uuid_bytes(value["file_id"]))
                path = opened[16:].decode("utf-8")
                expect("e2e name path", path, value["path_utf8"])
                if not safe_relative_path(path):
                    raise Mismatch(f"e2e name {path!r} is not a safe relative path")
            else:
                expect("e2e message", opened.decode("utf-8"), value["message_utf8"])
            expect(f"e2e {what} resealed",
                   b64url_encode(FORMAT_V1 + nonce + AESGCM(key).encrypt(nonce, opened, aad)),
                   value["sealed"])
            # Under the other kind (a name passed off as the message) it does not open.
            other = "transfer-e2e-message" if what == "name" else "transfer-file-name"
            other_aad = ctx("sealbox/v1/value", other.encode("ascii"), transfer_id, version)
            if not refuses(key, nonce, sealed[13:], other_aad):
                raise Mismatch(f"e2e {what} opened as another kind")
            another = ctx("sealbox/v1/value", kind.encode("ascii"), bytes(16), version)
            if not refuses(key, nonce, sealed[13:], another):
                raise Mismatch(f"e2e {what} opened for another transfer")
    for path in doc["refused_paths"]:
        if safe_relative_path(path):
            raise Mismatch(f"path {path!r} should be refused")
    for path in doc["accepted_paths"]:
        if not safe_relative_path(path):
            raise Mismatch(f"path {path!r} should be accepted")
    return len(doc["names"]), len(doc["messages"])


def main():
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    try:
        xwing_count = check_xwing(directory / "xwing-draft-06.json")
        doc = json.loads((directory / "vault.json").read_text())
        dek = h(doc["dek"])
        users_by_name = {u["name"]: u for u in doc["users"]}
        seeds = {u["name"]: check_user(u) for u in doc["users"]}
        for envelope in doc["envelopes"]:
            check_envelope(envelope, seeds, users_by_name, dek)
        for value in doc["values"]:
            check_value(value, dek)
        check_transfer(doc["transfer"])
        master_count = check_master(json.loads((directory / "master.json").read_text()))
        tokens = json.loads((directory / "tokens.json").read_text())["download_tokens"]
        for vector in tokens:
            check_download_token(vector)
        e2e_names, e2e_messages = check_transfer_e2e(
            json.loads((directory / "transfer_e2e.json").read_text()))
        files = json.loads((directory / "sbx1.json").read_text())
        for file in files["files"]:
            check_file(file, h(files["dek"]))
    except Mismatch as mismatch:
        print(f"MISMATCH: {mismatch}", file=sys.stderr)
        return 1
    print(
        f"ok: {xwing_count} X-Wing draft vectors, {len(doc['users'])} users, "
        f"{len(doc['envelopes'])} envelopes, {len(doc['values'])} values, "
        f"1 transfer (file name and password gate), {master_count} master-key seals, "
        f"{len(tokens)} download tokens, "
        f"{e2e_names} end-to-end names and {e2e_messages} messages, "
        f"{len(files['files'])} SBX1 files"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
