// Byte helpers shared by the format modules: base64 (both alphabets), hex, UUIDs as the
// 16 bytes docs/crypto.md uses (RFC 9562 order), and big-endian integers.

/** base64url without padding (RFC 4648 §5), as links and encrypted names use. */
export function base64UrlEncode(bytes) {
  return base64Encode(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Reads base64url without padding; throws on anything else (padding, other characters). */
export function base64UrlDecode(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new TypeError("not base64url");
  }
  const standard = text.replaceAll("-", "+").replaceAll("_", "/");
  const bytes = base64Decode(standard + "=".repeat((4 - (standard.length % 4)) % 4));
  // Refuse non-canonical encodings (stray bits in the last character), as Rust's decoder does.
  if (base64UrlEncode(bytes) !== text) throw new TypeError("not base64url");
  return bytes;
}

/** Standard base64 with padding. */
export function base64Encode(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function base64Decode(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function hexDecode(text) {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) throw new TypeError("not hex");
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

export function hexEncode(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a UUID's text form. */
export function isUuid(text) {
  return typeof text === "string" && UUID_RE.test(text);
}

/** The 16 bytes of a UUID's text form, in the order of its hex digits. */
export function uuidBytes(text) {
  if (!isUuid(text)) throw new TypeError("not a UUID");
  return hexDecode(text.replaceAll("-", ""));
}

/** The text form of 16 UUID bytes. */
export function uuidText(bytes) {
  const hex = hexEncode(bytes);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A UUID version 4 from 16 CSPRNG bytes (RFC 9562 §5.4), as 16 bytes. */
export function randomUuidBytes() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  return bytes;
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function be16(n) {
  const out = new Uint8Array(2);
  new DataView(out.buffer).setUint16(0, n, false);
  return out;
}

export function be64(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), false);
  return out;
}
