// Transfer links, in one place (mirrors src/client/link.rs). A link is
//   <public url>/t/{transferId}#s=<linkSecret>             server-sealed
//   <public url>/t/{transferId}#s=<linkSecret>&k=<key>     end-to-end
// and, from before link secrets existed, `#k=<key>` alone or no fragment at all. The
// fragment never reaches the server: the page sends `s` as the X-Transfer-Secret header
// and keeps `k` to itself. Fragment parameters are separated by `&`; others are ignored.

import { isUuid } from "./bytes.js";
import { decodeKey } from "./transfer-e2e.js";

/** The header a link secret travels in. */
export const SECRET_HEADER = "X-Transfer-Secret";
const SECRET_RE = /^[A-Za-z0-9_-]{16,128}$/;

/** Why a link cannot be used. Never carries the fragment (it holds the key). */
export class LinkError extends Error {
  constructor(message) {
    super(message);
    this.name = "LinkError";
  }
}

function fragmentParams(fragment) {
  const params = new Map();
  for (const part of fragment.replace(/^#/, "").split("&")) {
    const at = part.indexOf("=");
    if (at > 0 && !params.has(part.slice(0, at))) params.set(part.slice(0, at), part.slice(at + 1));
  }
  return params;
}

/**
 * Reads a link (a URL string or a Location). Returns `{server, transferId, secret, key,
 * keyGiven}`: `server` is what precedes `/t/` (ending in `/`), `secret` the link secret or
 * null, `key` the 32-byte transfer key or null, `keyGiven` whether the fragment had a
 * `k=` at all. Throws LinkError for a link that is not a transfer link, or whose key or
 * secret is malformed.
 */
export function parseLink(link) {
  const url = new URL(String(link));
  const at = url.pathname.lastIndexOf("/t/");
  if (at < 0) throw new LinkError("this is not a transfer link");
  const transferId = url.pathname.slice(at + 3).replace(/\/$/, "");
  if (!isUuid(transferId)) throw new LinkError("the transfer id in this link is not valid");
  const params = fragmentParams(url.hash);
  const secret = params.get("s") ?? null;
  if (secret !== null && !SECRET_RE.test(secret)) throw new LinkError("the link's secret is malformed");
  const keyGiven = params.has("k");
  let key = null;
  if (keyGiven) {
    try {
      key = decodeKey(params.get("k"));
    } catch {
      throw new LinkError("the link's key is not 32 bytes of base64url");
    }
  }
  return { server: `${url.origin}${url.pathname.slice(0, at)}/`, transferId: transferId.toLowerCase(), secret, key, keyGiven };
}

/**
 * The link to hand on: the API's `link` (which may already carry `#s=`) plus `k=` for an
 * end-to-end transfer, in the order `s` then `k`.
 */
export function linkWithKey(apiLink, encodedKey) {
  const [base, fragment = ""] = String(apiLink).split("#", 2);
  const parts = fragment.split("&").filter((p) => p !== "" && !p.startsWith("k="));
  if (encodedKey) parts.push(`k=${encodedKey}`);
  return parts.length ? `${base}#${parts.join("&")}` : base;
}

/** Headers that carry the link secret, when the link has one. */
export function secretHeaders(secret) {
  return secret ? { [SECRET_HEADER]: secret } : {};
}
