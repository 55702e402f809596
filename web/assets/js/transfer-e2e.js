// End-to-end transfers (docs/crypto.md "End-to-end transfers"), mirroring
// src/crypto/transfer_e2e.rs and src/crypto/sealed_value.rs: the transfer key `k` (32
// bytes, only ever in the link's fragment), client file ids (UUID v4), and file names
// sealed under `k` as a sealed value of kind "transfer-file-name", object id = the
// transfer id, version 1, of `client file id (16) || UTF-8 relative path` (a file's
// place in a sent folder, `a/b/c.txt`, or just its name), and the transfer's message
// sealed under `k` as kind "transfer-e2e-message", same object id and version.

import { base64UrlDecode, base64UrlEncode, be16, be64, concat, randomUuidBytes, uuidBytes } from "./bytes.js";

export const KEY_LEN = 32;
export const NAME_KIND = "transfer-file-name";
export const NAME_VERSION = 1;
/** The longest encrypted name the server accepts (characters). */
export const MAX_SEALED_NAME_CHARS = 1024;
const SEALED_OVERHEAD = 1 + 12 + 16;
/** The longest base name, in UTF-8 bytes, whose encrypted form fits MAX_SEALED_NAME_CHARS. */
export const MAX_NAME_BYTES = (MAX_SEALED_NAME_CHARS / 4) * 3 - SEALED_OVERHEAD - 16;
const FORMAT_VERSION = 1;
export const MESSAGE_KIND = "transfer-e2e-message";
export const MESSAGE_VERSION = 1;
/** The longest message, in UTF-8 bytes, that a sender seals (10,000 characters of up to 4 bytes). */
export const MAX_MESSAGE_BYTES = 40000;
const VALUE_LABEL = "sealbox/v1/value";

/** Why a key or an encrypted name could not be read. `kind`: "key", "malformed", "unauthentic". */
export class E2eError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = "E2eError";
    this.kind = kind;
  }
}

/** A fresh transfer key (32 CSPRNG bytes). */
export function generateKey() {
  return crypto.getRandomValues(new Uint8Array(KEY_LEN));
}

/** A fresh client file id: a UUID v4, as 16 bytes. */
export function newFileId() {
  return randomUuidBytes();
}

/** `k` as written after `k=` in a link: base64url without padding, 43 characters. */
export function encodeKey(key) {
  return base64UrlEncode(key);
}

/** Reads a key written by encodeKey; anything but 32 bytes of base64url is refused. */
export function decodeKey(text) {
  let bytes;
  try {
    bytes = base64UrlDecode(text);
  } catch {
    throw new E2eError("key", "the link's key is not 32 bytes of base64url");
  }
  if (bytes.length !== KEY_LEN) throw new E2eError("key", "the link's key is not 32 bytes of base64url");
  return bytes;
}

/** ctx(label, f1, ..., fn) = label || BE16(len(f1)) || f1 || ... */
export function context(label, ...fields) {
  const encoder = new TextEncoder();
  const parts = [encoder.encode(label)];
  for (const field of fields) {
    const bytes = typeof field === "string" ? encoder.encode(field) : field;
    parts.push(be16(bytes.length), bytes);
  }
  return concat(...parts);
}

/** The AAD of a sealed value: ctx("sealbox/v1/value", kind, object id, BE64(version)). */
export function valueAad(kind, objectId, version) {
  return context(VALUE_LABEL, kind, objectId, be64(version));
}

async function aesKey(key, usage) {
  return crypto.subtle.importKey("raw", key, "AES-GCM", false, [usage]);
}

/** 0x01 || nonce (12) || AES-256-GCM(key, nonce, plaintext, aad) || tag (16). */
export async function sealValue(key, aad, plaintext, nonce = crypto.getRandomValues(new Uint8Array(12))) {
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 },
    await aesKey(key, "encrypt"),
    plaintext,
  );
  return concat(Uint8Array.of(FORMAT_VERSION), nonce, new Uint8Array(sealed));
}

/** Opens a sealedValue; null when it does not authenticate, throws when malformed. */
export async function openValue(key, aad, sealed) {
  if (sealed.length < SEALED_OVERHEAD || sealed[0] !== FORMAT_VERSION) {
    throw new E2eError("malformed", "the sealed value is malformed");
  }
  try {
    const plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: sealed.subarray(1, 13), additionalData: aad, tagLength: 128 },
      await aesKey(key, "decrypt"),
      sealed.subarray(13),
    );
    return new Uint8Array(plaintext);
  } catch {
    return null;
  }
}

function nameAad(transferId) {
  return valueAad(NAME_KIND, uuidBytes(transferId), NAME_VERSION);
}

/** The encrypted name (tus `filename`) of a file: `fileId` 16 bytes, `name` a base name. */
export async function sealName(key, transferId, fileId, name, nonce) {
  const plaintext = concat(fileId, new TextEncoder().encode(name));
  return base64UrlEncode(await sealValue(key, nameAad(transferId), plaintext, nonce));
}

/** Opens an encrypted name: `{fileId (16 bytes), name}`. Throws E2eError. */
export async function openName(key, transferId, sealedName) {
  let bytes;
  try {
    bytes = base64UrlDecode(sealedName);
  } catch {
    throw new E2eError("malformed", "the encrypted file name is malformed");
  }
  let plaintext;
  try {
    plaintext = await openValue(key, nameAad(transferId), bytes);
  } catch {
    // Too short or another format byte: as Rust, that reads as not opening with this key.
    plaintext = null;
  }
  if (plaintext === null) {
    throw new E2eError("unauthentic", "the file name does not open with this link's key (wrong key or another transfer)");
  }
  if (plaintext.length < 16) throw new E2eError("malformed", "the encrypted file name is malformed");
  let name;
  try {
    name = new TextDecoder("utf-8", { fatal: true }).decode(plaintext.subarray(16));
  } catch {
    throw new E2eError("malformed", "the encrypted file name is malformed");
  }
  return { fileId: plaintext.slice(0, 16), name };
}

/** UTF-8 length of a name, to check MAX_NAME_BYTES before anything is uploaded. */
export function nameBytes(name) {
  return new TextEncoder().encode(name).length;
}

function messageAad(transferId) {
  return valueAad(MESSAGE_KIND, uuidBytes(transferId), MESSAGE_VERSION);
}

/** The transfer's message sealed under `key`, as sent in `sealedMessage` (base64url). */
export async function sealMessage(key, transferId, message, nonce) {
  return base64UrlEncode(await sealValue(key, messageAad(transferId), new TextEncoder().encode(message), nonce));
}

/** Opens a `sealedMessage`; throws E2eError ("unauthentic": the link is wrong). */
export async function openMessage(key, transferId, sealedMessage) {
  let plaintext = null;
  try {
    plaintext = await openValue(key, messageAad(transferId), base64UrlDecode(sealedMessage));
  } catch {
    plaintext = null;
  }
  if (plaintext === null) {
    throw new E2eError("unauthentic", "the message does not open with this link's key (the link is wrong)");
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(plaintext);
  } catch {
    throw new E2eError("malformed", "the encrypted message is malformed");
  }
}

/**
 * The segments of a file's relative path as sealed names carry it (docs/crypto.md):
 * `/`-separated, not empty, not absolute, no empty, `.` or `..` segment, no backslash or
 * NUL, no drive letter. Throws E2eError("path") for anything else: such a name must never
 * choose where a file is written. Mirrors transfer_e2e::check_relative_path.
 */
export function splitRelativePath(path) {
  const refuse = (why) => {
    throw new E2eError("path", `${JSON.stringify(path)} is not a safe relative path: ${why}`);
  };
  if (typeof path !== "string" || path === "") refuse("it is empty");
  if (path.startsWith("/")) refuse("it is absolute");
  if (path.includes("\\")) refuse("it holds a backslash");
  if (path.includes("\0")) refuse("it holds a NUL byte");
  const segments = path.split("/");
  if (/^[A-Za-z]:/.test(segments[0])) refuse("it starts with a drive letter");
  for (const segment of segments) {
    if (segment === "") refuse("it has an empty segment");
    if (segment === "." || segment === "..") refuse("it has a . or .. segment");
  }
  return segments;
}

/**
 * One file name for a browser download that cannot create folders (the save dialog, the
 * download worker): the path's segments joined with "_" (`a/b/c.txt` -> `a_b_c.txt`),
 * with anything unsafe dropped (empty, `.`, `..` segments, backslashes, control
 * characters, leading dots). Never throws; "download" when nothing is left.
 */
export function safeDownloadName(path) {
  const segments = String(path ?? "")
    .split(/[/\\]/)
    .map((segment) => segment.replace(/[\u0000-\u001f\u007f]/g, "_").trim())
    .filter((segment) => segment !== "" && segment !== "." && segment !== "..");
  const name = segments.join("_").replace(/^\.+/, "").trim();
  return name || "download";
}

/** The message a public transfer view shows: an end-to-end one opened with the link's
 *  key (throws E2eError when it does not open: the link is wrong), else the server's. */
export async function viewMessage(view, link) {
  if (view.e2e && view.sealedMessage) return openMessage(link.key, link.transferId, view.sealedMessage);
  return view.message ?? null;
}
