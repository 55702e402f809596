// SBX1, the segmented file format of docs/crypto.md "Files (SBX1)", mirroring
// src/crypto/sbx1/: a 46-byte header, then the plaintext cut into segments of 2^e bytes,
// each sealed with AES-256-GCM under an HKDF-SHA256 payload key, nonce
// `prefix (7) || BE32(index) || last flag`, the header as associated data.
//
// Everything here streams: `encryptStream` and `decryptStream` are TransformStreams that
// hold at most one segment (plus what the caller's chunks bring) in memory, whatever the
// file's size. WebCrypto does every primitive; this module only composes them.

export const MAGIC = [0x53, 0x42, 0x58, 0x31]; // "SBX1"
export const VERSION = 1;
export const ALGORITHM_AES_256_GCM = 1;
export const MIN_SEGMENT_EXPONENT = 12;
export const MAX_SEGMENT_EXPONENT = 24;
/** The exponent sealbox writes: 64 KiB segments. */
export const DEFAULT_SEGMENT_EXPONENT = 16;
export const SALT_LEN = 32;
export const NONCE_PREFIX_LEN = 7;
export const HEADER_LEN = 4 + 3 + SALT_LEN + NONCE_PREFIX_LEN;
export const TAG_LEN = 16;
const KEY_INFO_LABEL = new TextEncoder().encode("sealbox/v1/file");
const MAX_SEGMENTS = 2 ** 32;

/** Why SBX1 bytes could not be read; `kind` names the case as the Rust `FileError` does. */
export class Sbx1Error extends Error {
  constructor(kind, message, segment) {
    super(message);
    this.name = "Sbx1Error";
    this.kind = kind;
    if (segment !== undefined) this.segment = segment;
  }
}

/** The 46 header bytes and the values in them. */
export class Header {
  constructor(segmentExponent, salt, noncePrefix) {
    if (!(segmentExponent >= MIN_SEGMENT_EXPONENT && segmentExponent <= MAX_SEGMENT_EXPONENT)) {
      throw new Sbx1Error("header", `SBX1 segment size exponent ${segmentExponent} is not supported`);
    }
    if (salt.length !== SALT_LEN || noncePrefix.length !== NONCE_PREFIX_LEN) {
      throw new Sbx1Error("header", "SBX1 header salt or nonce prefix has the wrong length");
    }
    this.segmentExponent = segmentExponent;
    this.salt = Uint8Array.from(salt);
    this.noncePrefix = Uint8Array.from(noncePrefix);
    this.bytes = new Uint8Array(HEADER_LEN);
    this.bytes.set(MAGIC, 0);
    this.bytes[4] = VERSION;
    this.bytes[5] = ALGORITHM_AES_256_GCM;
    this.bytes[6] = segmentExponent;
    this.bytes.set(this.salt, 7);
    this.bytes.set(this.noncePrefix, 7 + SALT_LEN);
  }

  /** A fresh header: random salt and nonce prefix. */
  static generate(segmentExponent = DEFAULT_SEGMENT_EXPONENT) {
    return new Header(
      segmentExponent,
      crypto.getRandomValues(new Uint8Array(SALT_LEN)),
      crypto.getRandomValues(new Uint8Array(NONCE_PREFIX_LEN)),
    );
  }

  /** Reads the first 46 bytes of a file; refuses another magic, version, algorithm or exponent. */
  static parse(bytes) {
    if (bytes.length < HEADER_LEN) throw new Sbx1Error("header", "SBX1 header is too short");
    for (let i = 0; i < 4; i++) {
      if (bytes[i] !== MAGIC[i]) throw new Sbx1Error("header", "not an SBX1 file (bad magic)");
    }
    if (bytes[4] !== VERSION) throw new Sbx1Error("header", `SBX1 version ${bytes[4]} is not supported`);
    if (bytes[5] !== ALGORITHM_AES_256_GCM) {
      throw new Sbx1Error("header", `SBX1 algorithm ${bytes[5]} is not supported`);
    }
    return new Header(bytes[6], bytes.subarray(7, 7 + SALT_LEN), bytes.subarray(7 + SALT_LEN, HEADER_LEN));
  }

  /** Plaintext bytes per segment, S. */
  get segmentSize() {
    return 2 ** this.segmentExponent;
  }

  /** Bytes per sealed full segment, T = S + 16. */
  get sealedSegmentSize() {
    return this.segmentSize + TAG_LEN;
  }

  /** File offset where sealed segment `index` starts. */
  segmentOffset(index) {
    return HEADER_LEN + index * this.sealedSegmentSize;
  }

  /** Plaintext offset of segment `index`. */
  plaintextOffset(index) {
    return index * this.segmentSize;
  }
}

/** The file length (C) of a plaintext of `plaintextLen` bytes. */
export function ciphertextLength(plaintextLen, segmentExponent = DEFAULT_SEGMENT_EXPONENT) {
  const size = 2 ** segmentExponent;
  const segments = Math.max(1, Math.ceil(plaintextLen / size));
  return HEADER_LEN + plaintextLen + TAG_LEN * segments;
}

/**
 * From a file's length: its segment count and plaintext length. Throws `invalid-length`
 * for a length no SBX1 file has (cut inside a segment, bytes appended).
 */
export function layoutFromCiphertextLength(header, ciphertextLen) {
  const body = ciphertextLen - HEADER_LEN;
  const sealed = header.sealedSegmentSize;
  if (!Number.isSafeInteger(ciphertextLen) || body < TAG_LEN) {
    throw new Sbx1Error("invalid-length", "SBX1 data has an impossible length");
  }
  const segments = Math.ceil(body / sealed);
  const lastSealed = body - (segments - 1) * sealed;
  const lastOk = segments === 1 ? lastSealed >= TAG_LEN : lastSealed > TAG_LEN;
  if (segments > MAX_SEGMENTS || !lastOk || lastSealed > sealed) {
    throw new Sbx1Error("invalid-length", "SBX1 data has an impossible length");
  }
  return { segments, plaintextLen: body - TAG_LEN * segments };
}

/** The HKDF `info`: "sealbox/v1/file" || file id (16 bytes). */
export function keyInfo(fileId) {
  const info = new Uint8Array(KEY_INFO_LABEL.length + 16);
  info.set(KEY_INFO_LABEL, 0);
  info.set(fileId, KEY_INFO_LABEL.length);
  return info;
}

/**
 * The payload key as a non-extractable AES-GCM CryptoKey:
 * HKDF-SHA256(ikm = DEK, salt = header salt, info = keyInfo(fileId), L = 32).
 * `dek` is 32 bytes (Uint8Array); `fileId` the 16 bytes of a UUID.
 */
export async function payloadKey(dek, fileId, header) {
  const ikm = await crypto.subtle.importKey("raw", dek, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: header.salt, info: keyInfo(fileId) },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** nonce_i = prefix (7) || BE32(index) || last flag. */
export function segmentNonce(header, index, last) {
  const nonce = new Uint8Array(12);
  nonce.set(header.noncePrefix, 0);
  new DataView(nonce.buffer).setUint32(NONCE_PREFIX_LEN, index, false);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/**
 * Seals segment `index` (plaintext of S bytes, or 1 ..= S for the last; empty only for the
 * empty file's one segment) under `key` from payloadKey. For writers that produce a file
 * piecewise (a resumed upload re-creating ciphertext from a segment on).
 */
export async function sealSegment(key, header, index, last, plaintext) {
  return seal(key, header, index, last, plaintext);
}

/** The number of segments of a plaintext of `plaintextLen` bytes. */
export function segmentCount(header, plaintextLen) {
  return Math.max(1, Math.ceil(plaintextLen / header.segmentSize));
}

/**
 * The AES-GCM parameters of one stream's segments, made once and reused: the nonce and
 * the parameters object are rewritten in place for each segment. WebCrypto copies `iv`,
 * `additionalData` and the data when `encrypt`/`decrypt` is called (before its promise
 * settles), so the next segment may reuse them at once; only the result is a new buffer,
 * which WebCrypto always allocates.
 */
class SegmentCipher {
  constructor(key, header) {
    this.key = key;
    this.nonce = new Uint8Array(12);
    this.nonce.set(header.noncePrefix, 0);
    this.counter = new DataView(this.nonce.buffer);
    this.params = { name: "AES-GCM", iv: this.nonce, additionalData: header.bytes, tagLength: 128 };
  }

  at(index, last) {
    this.counter.setUint32(NONCE_PREFIX_LEN, index, false);
    this.nonce[11] = last ? 1 : 0;
    return this.params;
  }

  async seal(index, last, plaintext) {
    return new Uint8Array(await crypto.subtle.encrypt(this.at(index, last), this.key, plaintext));
  }

  /** The plaintext, or null when the segment does not authenticate. */
  async open(index, last, sealed) {
    try {
      return new Uint8Array(await crypto.subtle.decrypt(this.at(index, last), this.key, sealed));
    } catch {
      return null;
    }
  }
}

async function seal(key, header, index, last, plaintext) {
  return new SegmentCipher(key, header).seal(index, last, plaintext);
}

/**
 * A byte queue: bytes pushed at the end, taken from the front. Taking only moves a read
 * offset; the buffer is compacted when a push needs room, so each byte is copied O(1) times.
 */
class ByteQueue {
  constructor(capacity) {
    this.buffer = new Uint8Array(capacity);
    this.start = 0;
    this.end = 0;
  }

  get length() {
    return this.end - this.start;
  }

  push(bytes) {
    if (this.end + bytes.length > this.buffer.length) {
      const needed = this.length + bytes.length;
      if (needed <= this.buffer.length) {
        this.buffer.copyWithin(0, this.start, this.end);
      } else {
        const grown = new Uint8Array(Math.max(this.buffer.length * 2, needed));
        grown.set(this.buffer.subarray(this.start, this.end));
        this.buffer = grown;
      }
      this.end = this.length;
      this.start = 0;
    }
    this.buffer.set(bytes, this.end);
    this.end += bytes.length;
  }

  /**
   * Removes the first `n` bytes and returns them as a view into the queue's buffer (no
   * copy): valid until the next push, which is enough for WebCrypto (it copies its input
   * when called) and for Header.parse (it copies what it keeps).
   */
  take(n) {
    const out = this.buffer.subarray(this.start, this.start + n);
    this.start += n;
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
    }
    return out;
  }
}

function asBytes(chunk) {
  if (chunk instanceof Uint8Array) return chunk;
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError("SBX1 streams carry bytes (Uint8Array or ArrayBuffer)");
}

/**
 * A TransformStream from plaintext to SBX1 bytes, as `SegmentEncryptor` writes them.
 *
 * Options: `header` (default: a fresh one), `startSegment` (default 0) to resume a file of
 * which segments 0 .. startSegment - 1 are already stored (then the header is not written
 * again and the plaintext fed in starts at `header.plaintextOffset(startSegment)`; it must
 * be the same bytes as before). A full segment is held back until more data or the end
 * arrives, because the last segment is sealed differently.
 */
export function encryptStream(dek, fileId, options = {}) {
  const header = options.header ?? Header.generate(options.segmentExponent);
  let index = options.startSegment ?? 0;
  const size = header.segmentSize;
  const held = new ByteQueue(size * 2);
  let cipher;
  return new TransformStream({
    async start(controller) {
      cipher = new SegmentCipher(await payloadKey(dek, fileId, header), header);
      if (index === 0) controller.enqueue(header.bytes.slice());
    },
    async transform(chunk, controller) {
      held.push(asBytes(chunk));
      // Everything but the last (possibly partial) segment of what is held is sealed now.
      while (held.length > size) {
        if (index >= MAX_SEGMENTS - 1) throw new Sbx1Error("too-large", "SBX1 file would have more than 2^32 segments");
        controller.enqueue(await cipher.seal(index, false, held.take(size)));
        index += 1;
      }
    },
    async flush(controller) {
      if (held.length === 0 && index > 0) {
        throw new Sbx1Error("empty-last-segment", "SBX1 file cannot end with an empty segment after full ones");
      }
      controller.enqueue(await cipher.seal(index, true, held.take(held.length)));
    },
  });
}

/**
 * A TransformStream from a whole SBX1 file to its plaintext. `ciphertextLen` is the file's
 * length as the server reports it (Content-Length, or the listing's size): the last flag
 * comes from it, never from the data, so a file cut at a segment boundary fails, as do
 * bytes beyond it. Each segment is written out as soon as it authenticates; on any failure
 * the stream errors with an Sbx1Error, so a consumer must discard what it wrote.
 * `onProgress(plaintextBytes)` is called after each segment.
 *
 * Memory: a segment that lies whole inside an arriving chunk is decrypted straight from
 * that chunk (a view, no copy); only a segment split across chunks is gathered in one
 * reused buffer of at most one sealed segment. Per segment the one new buffer is the
 * plaintext WebCrypto returns, which goes on to the consumer.
 */
export function decryptStream(dek, fileId, ciphertextLen, onProgress) {
  let header = null;
  let layout = null;
  let cipher = null;
  let index = 0;
  let received = 0;
  let plaintextOut = 0;
  const held = new ByteQueue(HEADER_LEN);

  /** Bytes the next step needs whole: the header, then each sealed segment. */
  function needed() {
    if (header === null) return HEADER_LEN;
    return index === layout.segments - 1 ? ciphertextLen - header.segmentOffset(index) : header.sealedSegmentSize;
  }

  /** Handles `bytes`, exactly needed() of them (a view that is not kept). */
  async function step(bytes, controller) {
    if (header === null) {
      header = Header.parse(bytes);
      layout = layoutFromCiphertextLength(header, ciphertextLen);
      cipher = new SegmentCipher(await payloadKey(dek, fileId, header), header);
      return;
    }
    const plaintext = await cipher.open(index, index === layout.segments - 1, bytes);
    if (plaintext === null) {
      throw new Sbx1Error("unauthentic", `SBX1 segment ${index} failed authentication`, index);
    }
    controller.enqueue(plaintext);
    plaintextOut += plaintext.length;
    index += 1;
    if (onProgress) onProgress(plaintextOut);
  }

  function done() {
    return layout !== null && index === layout.segments;
  }

  return new TransformStream({
    async transform(chunk, controller) {
      const bytes = asBytes(chunk);
      received += bytes.length;
      if (received > ciphertextLen || (done() && bytes.length > 0)) {
        throw new Sbx1Error("trailing-data", `SBX1 file has data after its last segment ${layout ? layout.segments - 1 : 0}`);
      }
      let at = 0;
      while (at < bytes.length && !done()) {
        const need = needed();
        if (held.length > 0) {
          // A step begun in an earlier chunk: complete it in the held buffer.
          const part = Math.min(need - held.length, bytes.length - at);
          held.push(bytes.subarray(at, at + part));
          at += part;
          if (held.length < need) return;
          await step(held.take(need), controller);
        } else if (bytes.length - at >= need) {
          await step(bytes.subarray(at, at + need), controller);
          at += need;
        } else {
          held.push(bytes.subarray(at));
          return;
        }
      }
      if (at < bytes.length) {
        throw new Sbx1Error("trailing-data", `SBX1 file has data after its last segment ${layout.segments - 1}`);
      }
    },
    flush() {
      if (header === null) {
        throw new Sbx1Error("invalid-length", "SBX1 data has an impossible length");
      }
      if (!done()) {
        // The bytes stopped short of the length the file was announced with.
        throw new Sbx1Error("truncated", `SBX1 file is truncated after segment ${Math.max(index - 1, 0)}`, index);
      }
    },
  });
}

/** Decrypts a whole SBX1 file held in memory (small files and tests). */
export async function decryptBytes(dek, fileId, bytes) {
  return collect(new Blob([bytes]).stream().pipeThrough(decryptStream(dek, fileId, bytes.length)));
}

/** Encrypts bytes held in memory (small values and tests). */
export async function encryptBytes(dek, fileId, bytes, options = {}) {
  return collect(new Blob([bytes]).stream().pipeThrough(encryptStream(dek, fileId, options)));
}

async function collect(stream) {
  const parts = [];
  let length = 0;
  for await (const part of stream) {
    parts.push(part);
    length += part.length;
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
