// Receiving one file of a transfer to disk, with bounded memory whatever its size: the
// flow behind the /t/{id} page. A FileReceiver is an EventTarget that reports
// `progress` ({bytes, total}), `done` and `failed` ({error}) events.
//
// - PICKER: the ciphertext `fetch` body is piped through sbx1.decryptStream into the
//   writable of a file handle the user picked (showSaveFilePicker / showDirectoryPicker).
//   On any failure the writable is aborted (its swap file is discarded) and the file the
//   picker created is removed, so nothing that looks complete is left.
// - WORKER: the service worker /t/download-worker.js is handed the job over a
//   MessageChannel, then the page navigates to /t/download/{job id}; the worker fetches,
//   decrypts and answers that navigation as an attachment, so the browser's own download
//   manager writes the file. A failure mid-way errors the response stream: the browser
//   marks the download failed and keeps no complete-looking file. The page pings the
//   worker while a download runs so the browser does not stop it as idle.
// Server-sealed transfers need no decryption: the same flows run without the decrypting
// step (the server decrypts).

import { DEFAULT_SEGMENT_EXPONENT, Header, decryptStream, layoutFromCiphertextLength } from "./sbx1.js";
import { PICKER, WORKER } from "./capabilities.js";
import { secretHeaders } from "./transfer-link.js";
import { errorOf, networkError } from "./api.js";

/** Where the download worker lives, and the scope it serves. */
export const WORKER_URL = "/t/download-worker.js";
export const WORKER_SCOPE = "/t/";
/** The navigation the worker answers: `${DOWNLOAD_PREFIX}${job id}`. */
export const DOWNLOAD_PREFIX = "/t/download/";
const PING_EVERY_MS = 10_000;

/**
 * The plaintext length of an SBX1 file of `ciphertextLen` bytes written with 64 KiB
 * segments (what sealbox writes), for showing a size before the header is read; the
 * decryptor reads the real header. Falls back to the ciphertext length.
 */
export function plaintextSize(ciphertextLen) {
  try {
    const header = new Header(DEFAULT_SEGMENT_EXPONENT, new Uint8Array(32), new Uint8Array(7));
    return layoutFromCiphertextLength(header, ciphertextLen).plaintextLen;
  } catch {
    return ciphertextLen;
  }
}

/** Why a download did not finish, in words for the page. */
export class DownloadError extends Error {
  constructor(message, cause) {
    super(message);
    this.name = "DownloadError";
    this.cause = cause;
  }
}

/** The words for an error met while downloading. */
export function describeFailure(error) {
  if (error?.name === "Sbx1Error") {
    return error.kind === "truncated"
      ? "The file arrived incomplete, so it was not kept. Try again."
      : "The file did not decrypt: it was damaged or tampered with, or the link's key is wrong. Nothing was kept.";
  }
  if (error?.name === "AbortError") return "The download was cancelled. Nothing was kept.";
  if (error?.name === "ApiError" || error?.name === "DownloadError") return error.message;
  return `The download failed (${error?.message ?? error}). Nothing was kept.`;
}

let workerRegistration = null;

/** The page's only Trusted Types policy (UI_CSP allows just this one): it yields the
 *  download worker's URL and refuses any other. */
const workerUrlPolicy = globalThis.trustedTypes?.createPolicy("sealbox-worker", {
  createScriptURL(url) {
    if (url !== WORKER_URL) throw new TypeError("only the download worker may be registered");
    return url;
  },
});

/** Registers (once) and returns the active download worker. */
export async function downloadWorker() {
  workerRegistration ??= (async () => {
    const url = workerUrlPolicy ? workerUrlPolicy.createScriptURL(WORKER_URL) : WORKER_URL;
    await navigator.serviceWorker.register(url, { scope: WORKER_SCOPE, type: "module", updateViaCache: "none" });
    const registration = await navigator.serviceWorker.ready;
    if (!registration.active) throw new DownloadError("The download helper did not start.");
    return registration;
  })();
  try {
    return (await workerRegistration).active;
  } catch (error) {
    workerRegistration = null;
    throw error;
  }
}

function randomId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * One file to receive. `job`: {url (the file under a download token), secret, size
 * (bytes the server stores), name, key (32 bytes, e2e only), fileId (16 bytes, e2e only)}.
 */
export class FileReceiver extends EventTarget {
  constructor(job) {
    super();
    this.job = job;
    this.total = job.key ? plaintextSize(job.size) : job.size;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Receives into `handle` (a FileSystemFileHandle); resolves when the file is complete. */
  async toFile(handle) {
    const { job } = this;
    let writable = null;
    try {
      let response;
      try {
        response = await fetch(job.url, { headers: secretHeaders(job.secret), cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" });
      } catch {
        throw networkError();
      }
      if (!response.ok) throw await errorOf(response);
      writable = await handle.createWritable();
      let stream = response.body;
      const onProgress = (bytes) => this.emit("progress", { bytes, total: this.total });
      if (job.key) {
        stream = stream.pipeThrough(decryptStream(job.key, job.fileId, job.size, onProgress));
      } else {
        stream = stream.pipeThrough(counting(onProgress));
      }
      await stream.pipeTo(writable);
      this.emit("done", {});
    } catch (error) {
      // pipeTo aborted the writable (its data is discarded); remove the empty file too.
      await writable?.abort?.().catch(() => {});
      await handle.remove?.().catch(() => {});
      this.emit("failed", { error });
      throw error;
    }
  }

  /** Receives through the download worker; resolves when the worker has sent it all. */
  async throughWorker() {
    const { job } = this;
    const worker = await downloadWorker();
    const channel = new MessageChannel();
    const id = randomId();
    const finished = new Promise((resolve, reject) => {
      channel.port1.onmessage = ({ data }) => {
        if (data.type === "progress") this.emit("progress", { bytes: data.bytes, total: this.total });
        else if (data.type === "done") resolve();
        else if (data.type === "failed") reject(Object.assign(new DownloadError(data.message), { kind: data.kind, name: data.errorName ?? "DownloadError" }));
      };
    });
    const ready = new Promise((resolve) => {
      const previous = channel.port1.onmessage;
      channel.port1.onmessage = (event) => {
        if (event.data.type === "ready") {
          channel.port1.onmessage = previous;
          resolve();
        } else previous(event);
      };
    });
    worker.postMessage(
      {
        type: "prepare",
        id,
        url: new URL(job.url, location.href).href,
        secret: job.secret,
        size: job.size,
        plaintextSize: this.total,
        name: job.name,
        key: job.key ?? null,
        fileId: job.fileId ?? null,
      },
      [channel.port2],
    );
    await ready;
    const ping = setInterval(() => worker.postMessage({ type: "ping" }), PING_EVERY_MS);
    try {
      const link = document.createElement("a");
      link.href = `${DOWNLOAD_PREFIX}${id}`;
      link.rel = "noopener noreferrer";
      link.hidden = true;
      document.body.append(link);
      link.click();
      link.remove();
      await finished;
      this.emit("done", {});
    } catch (error) {
      this.emit("failed", { error });
      throw error;
    } finally {
      clearInterval(ping);
      channel.port1.close();
    }
  }

  /** Receives by `method` (capabilities.js); `handle` for PICKER. */
  run(method, handle) {
    if (method === PICKER) return this.toFile(handle);
    if (method === WORKER) return this.throughWorker();
    return Promise.reject(new DownloadError("This browser cannot save a decrypted download as it arrives."));
  }
}

function counting(onProgress) {
  let bytes = 0;
  return new TransformStream({
    transform(chunk, controller) {
      bytes += chunk.byteLength;
      controller.enqueue(chunk);
      onProgress(bytes);
    },
  });
}
