// Sending a transfer from the browser: the flow behind /send. A TransferSender is an
// EventTarget reporting `progress` ({file, bytes, total, sentAll, totalAll}), `retry`
// ({file, error}) and `file-done` ({file}) events.
//
// End-to-end (the default): one transfer key, a UUID v4 client file id per file, each
// file's contents SBX1 under (key, file id) with 64 KiB segments, each name sealed under
// the key (docs/crypto.md "End-to-end transfers"), exactly as `sealbox send` writes them.
// A file from a picked or dropped folder is named by its relative path (`a/b/c.txt`).
// The message is sealed under the key too, bound to the transfer's id, and set with
// PUT /v1/transfers/{id}/sealed-message right after the transfer is created: the server
// never receives it in the clear.
// The ciphertext goes up with tus in PATCHes of at most PATCH_BYTES, each made from a
// File.slice() of the plaintext, so a file is never held in memory whole. A dropped
// connection is retried: the page asks the server for its offset (HEAD) and re-creates
// the ciphertext from the segment holding it (same header, key and file id, so the same
// bytes and no reused nonce), after checking that the file's size and modification time
// have not changed. Server-sealed: the plaintext goes up as is and the server encrypts.
//
// Resuming after a reload: while a send runs, what it needs to continue (the transfer's
// id, upload URL and link, each file's name, size, modification time, client file id,
// SBX1 header and tus location, and the transfer key) is kept in this tab's
// sessionStorage under PENDING_KEY, and removed at finalize. After a reload the user picks
// the same files again; `pendingSend()` reads the record, `matchFiles()` pairs the picked
// files with it (refusing any whose size or modification time changed), and
// `TransferSender.resume()` asks the server for each upload's offset and goes on from
// there with the same header, key and file id, so the bytes are those of an
// uninterrupted upload. The key is there only for the upload's duration, in this tab's
// storage (never localStorage): what it protects already sits, encrypted, on the server.

import { Header, HEADER_LEN, payloadKey, sealSegment, segmentCount, ciphertextLength } from "./sbx1.js";
import {
  decodeKey, encodeKey, generateKey, newFileId, sealMessage, sealName, nameBytes, splitRelativePath,
  MAX_MESSAGE_BYTES, MAX_NAME_BYTES,
} from "./transfer-e2e.js";
import { linkWithKey } from "./transfer-link.js";
import { base64Decode, base64Encode, hexDecode, hexEncode } from "./bytes.js";
import { ApiError, errorOf, networkError } from "./api.js";

/** Ciphertext bytes per PATCH: a multiple of a sealed 64 KiB segment, about 8 MiB. */
export const PATCH_SEGMENTS = 128;
export const MAX_CONSECUTIVE_FAILURES = 10;
const TUS = { "Tus-Resumable": "1.0.0" };

function backoffMs(failures) {
  return Math.min(250 * 2 ** Math.min(failures, 5), 8000);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Relative paths of files that came from a dropped folder (a File's own
 *  webkitRelativePath is empty then, and read-only). */
const droppedPaths = new WeakMap();

/** Records that `file` came from a dropped folder at `path` (`folder/sub/name`). */
export function rememberPath(file, path) {
  droppedPaths.set(file, path);
  return file;
}

/** The name a picked file is sent under: its path inside a picked or dropped folder, else its name. */
export function sendName(file) {
  return droppedPaths.get(file) || file.webkitRelativePath || file.name;
}

/**
 * Every file under the dropped items (DataTransferItem.webkitGetAsEntry() entries),
 * each remembered with its path from the dropped folder's parent, depth first, sorted.
 */
export async function filesFromEntries(entries) {
  const out = [];
  const walk = async (entry, prefix) => {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push(rememberPath(file, path));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      const children = [];
      // readEntries answers in batches until it answers an empty one.
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (batch.length === 0) break;
        children.push(...batch);
      }
      children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const child of children) await walk(child, path);
    }
  };
  for (const entry of entries) if (entry) await walk(entry, "");
  return out;
}

/** Problems with the picked files that stop a send before anything is uploaded. */
export function checkFiles(files) {
  if (files.length === 0) return "Pick at least one file.";
  const seen = new Set();
  for (const file of files) {
    const name = sendName(file);
    try {
      splitRelativePath(name);
    } catch (error) {
      return `${name}: ${error.message}.`;
    }
    if (nameBytes(name) > MAX_NAME_BYTES) return `${name}: the name (with its folders) is longer than ${MAX_NAME_BYTES} bytes.`;
    if (seen.has(name)) return `${name} is picked twice.`;
    seen.add(name);
  }
  return null;
}

/** Problems with the message: an end-to-end one is sealed, up to MAX_MESSAGE_BYTES. */
export function checkMessage(message) {
  if (new TextEncoder().encode(message ?? "").length > MAX_MESSAGE_BYTES) {
    return `The message is longer than ${MAX_MESSAGE_BYTES} bytes.`;
  }
  return null;
}

/** Where an unfinished send is recorded, in sessionStorage. */
export const PENDING_KEY = "sealbox.pending-send";

/** The unfinished send of this tab, or null. */
export function pendingSend(store = globalThis.sessionStorage) {
  try {
    return JSON.parse(store.getItem(PENDING_KEY) ?? "null");
  } catch {
    return null;
  }
}

export function forgetPendingSend(store = globalThis.sessionStorage) {
  store.removeItem(PENDING_KEY);
}

/**
 * Pairs files picked again with the record of an unfinished send, by name. Returns
 * {files} in the record's order, or {problem} naming a file that is missing or changed
 * on disk since (its size or modification time differs).
 */
export function matchFiles(record, picked) {
  const files = [];
  for (const entry of record.files) {
    const file = picked.find((f) => sendName(f) === entry.name);
    if (!file) return { problem: `Pick ${entry.name} too: it is part of the interrupted send.` };
    if (file.size !== entry.size || file.lastModified !== entry.lastModified) {
      return { problem: `${entry.name} changed on disk since the upload started, so it cannot resume. Send it again as a new transfer.` };
    }
    files.push(file);
  }
  return { files };
}

export class TransferSender extends EventTarget {
  /** `session` (api.js Session); `options`: {files, name, message, expiresInHours, maxDownloads, password, e2e}. */
  constructor(session, options, store = globalThis.sessionStorage) {
    super();
    this.session = session;
    this.options = options;
    this.store = store;
    this.e2e = options.e2e !== false;
    this.key = this.e2e ? generateKey() : null;
    this.totalAll = options.files.reduce((n, f) => n + this.uploadLength(f), 0);
    this.sentBefore = 0;
    this.record = null;
  }

  /** A sender that continues `record` (pendingSend()) with `files` (matchFiles()). */
  static resuming(session, record, files, store = globalThis.sessionStorage) {
    const sender = new TransferSender(session, { files, e2e: record.e2e }, store);
    sender.key = record.key ? decodeKey(record.key) : null;
    sender.record = record;
    return sender;
  }

  save() {
    this.store?.setItem(PENDING_KEY, JSON.stringify(this.record));
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  uploadLength(file) {
    return this.e2e ? ciphertextLength(file.size) : file.size;
  }

  /** Creates the transfer, uploads every file, finalizes; resolves to the link to hand on. */
  async run() {
    const { options } = this;
    const body = { name: options.name, e2e: this.e2e };
    // End-to-end: the message is sealed under the key once the transfer's id is known.
    if (options.message && !this.e2e) body.message = options.message;
    if (options.expiresInHours) body.expiresInHours = options.expiresInHours;
    if (options.maxDownloads) body.maxDownloads = options.maxDownloads;
    if (options.password) body.password = options.password;
    if (options.recipients?.length) body.recipients = options.recipients;
    const created = await this.session.call("POST", "/v1/transfers", { body });
    if (options.message && this.e2e) {
      const sealedMessage = await sealMessage(this.key, created.id, options.message);
      await this.session.call("PUT", `/v1/transfers/${encodeURIComponent(created.id)}/sealed-message`, { body: { sealedMessage } });
    }
    this.record = {
      transferId: created.id,
      uploadUrl: new URL(created.uploadUrl, location.href).href,
      link: created.link,
      e2e: this.e2e,
      key: this.key ? encodeKey(this.key) : null,
      files: options.files.map((file) => ({ name: sendName(file), size: file.size, lastModified: file.lastModified })),
    };
    this.save();
    return this.uploadAll();
  }

  /** Goes on with a recorded send: each upload from the offset the server holds. */
  resume() {
    return this.uploadAll();
  }

  async uploadAll() {
    const { record } = this;
    for (const [index, file] of this.options.files.entries()) {
      const entry = record.files[index];
      if (!entry.done) {
        await this.upload(file, entry);
        entry.done = true;
        this.save();
      }
      this.sentBefore += this.uploadLength(file);
      this.emit("file-done", { file });
    }
    const done = await this.session.call("POST", `/v1/transfers/${encodeURIComponent(record.transferId)}/finalize`);
    forgetPendingSend(this.store);
    const link = new URL(done.transfer?.link ?? record.link, location.href).href;
    return { transfer: done.transfer, link: this.e2e ? linkWithKey(link, encodeKey(this.key)) : link, mailed: done.mailed };
  }

  /** Uploads `file`, whose record `entry` holds (or gets) its header, file id and tus location. */
  async upload(file, entry) {
    const stamp = { size: entry.size, lastModified: entry.lastModified };
    let header = null;
    let fileId = null;
    if (this.e2e) {
      header = entry.header ? Header.parse(base64Decode(entry.header)) : Header.generate();
      fileId = entry.fileId ? hexDecode(entry.fileId) : newFileId();
    }
    const key = this.e2e ? await payloadKey(this.key, fileId, header) : null;
    const total = this.uploadLength(file);
    let offset = 0;
    if (entry.location) {
      offset = Number((await tusFetch(entry.location, { method: "HEAD", headers: TUS })).headers.get("Upload-Offset"));
      this.emit("resumed", { file, offset, total });
    } else {
      const name = this.e2e ? await sealName(this.key, this.record.transferId, fileId, sendName(file)) : sendName(file);
      const metadata = [`filename ${base64Encode(new TextEncoder().encode(name))}`, `encryption ${btoa(this.e2e ? "client" : "server")}`];
      const response = await tusFetch(this.record.uploadUrl, { method: "POST", headers: { ...TUS, "Upload-Length": String(total), "Upload-Metadata": metadata.join(",") } });
      entry.location = new URL(response.headers.get("Location"), this.record.uploadUrl).href;
      if (this.e2e) {
        entry.header = base64Encode(header.bytes);
        entry.fileId = hexEncode(fileId);
      }
      this.save();
    }
    const location = entry.location;
    let failures = 0;
    let lastError = null;
    while (offset < total) {
      if (failures > 0) {
        if (failures >= MAX_CONSECUTIVE_FAILURES) {
          throw new ApiError(0, "UPLOAD_FAILED", `Uploading ${sendName(file)} failed ${failures} times in a row (${lastError?.message}).`);
        }
        this.emit("retry", { file, error: lastError });
        await sleep(backoffMs(failures));
        try {
          offset = Number((await tusFetch(location, { method: "HEAD", headers: TUS })).headers.get("Upload-Offset"));
        } catch (error) {
          if (!retryable(error)) throw error;
          failures += 1;
          lastError = error;
          continue;
        }
        if (offset >= total) break;
      }
      checkUnchanged(file, stamp);
      const chunk = await this.produce(file, header, key, offset);
      try {
        const answer = await tusFetch(location, {
          method: "PATCH",
          headers: { ...TUS, "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
          body: chunk,
        });
        offset = Number(answer.headers.get("Upload-Offset"));
        failures = 0;
      } catch (error) {
        if (!retryable(error)) throw error;
        failures += 1;
        lastError = error;
      }
      this.emit("progress", { file, bytes: offset, total, sentAll: this.sentBefore + offset, totalAll: this.totalAll });
    }
  }

  /** The upload's bytes from `offset`: up to PATCH_SEGMENTS sealed segments (plaintext as is for server mode). */
  async produce(file, header, key, offset) {
    if (!this.e2e) {
      const size = PATCH_SEGMENTS * 65536;
      return read(file, offset, Math.min(offset + size, file.size));
    }
    const parts = [];
    let skip = 0;
    if (offset < HEADER_LEN) {
      parts.push(header.bytes.subarray(offset));
    }
    const from = offset < HEADER_LEN ? 0 : Math.floor((offset - HEADER_LEN) / header.sealedSegmentSize);
    if (offset >= HEADER_LEN) skip = offset - header.segmentOffset(from);
    const segments = segmentCount(header, file.size);
    const to = Math.min(from + PATCH_SEGMENTS, segments);
    const plaintext = await read(file, header.plaintextOffset(from), Math.min(header.plaintextOffset(to), file.size));
    for (let index = from; index < to; index++) {
      const start = (index - from) * header.segmentSize;
      const sealed = await sealSegment(key, header, index, index === segments - 1, plaintext.subarray(start, start + header.segmentSize));
      parts.push(sealed);
    }
    const length = parts.reduce((n, p) => n + p.length, 0) - skip;
    const out = new Uint8Array(length);
    let at = 0;
    for (const part of parts) {
      const piece = skip > 0 ? part.subarray(Math.min(skip, part.length)) : part;
      skip = Math.max(0, skip - part.length);
      out.set(piece, at);
      at += piece.length;
    }
    return out;
  }
}

/** Bytes [start, end) of `file`; a file changed on disk since it was picked cannot be read. */
async function read(file, start, end) {
  try {
    return new Uint8Array(await file.slice(start, end).arrayBuffer());
  } catch (error) {
    if (error?.name === "NotReadableError") throw changed(file);
    throw error;
  }
}

function changed(file) {
  return new ApiError(0, "FILE_CHANGED", `${sendName(file)} changed on disk while it was being sent, so the upload stopped. Send it again.`);
}

function checkUnchanged(file, stamp) {
  if (file.size !== stamp.size || file.lastModified !== stamp.lastModified) throw changed(file);
}

/** Network failures, 5xx, 409 (offset mismatch) and 429 are worth another try. */
function retryable(error) {
  return error instanceof ApiError && (error.status === 0 || error.status >= 500 || error.status === 409 || error.status === 429 || error.status === 423);
}

async function tusFetch(url, init) {
  let response;
  try {
    response = await fetch(url, { ...init, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" });
  } catch {
    throw networkError();
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}
