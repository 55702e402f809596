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
//   worker while a download runs so the browser does not stop it as idle; the worker
//   answers each ping. A worker that does not start, does not take the job, or falls
//   silent mid-way (killed, stuck) fails the download after a timeout with a readable
//   error, and the next attempt unregisters it and registers it afresh.
// A file whose first answer is 401 (its download token expired or was renewed under it)
// is asked for once more with the token `job.refresh()` gives; a response already
// streaming is never cut by the token's expiry.
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
/** How long the worker may take to start, and to take a job. */
export const WORKER_START_TIMEOUT_MS = 10_000;
/** How long a running download may go without a word from the worker (it answers each
 *  ping, so a live worker is never silent this long). */
export const WORKER_SILENCE_TIMEOUT_MS = 3 * PING_EVERY_MS;

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

/** The worker did not answer in time; the words say what the user can do. */
function workerTimeout(what) {
  return new DownloadError(
    `The download helper ${what}, so nothing was saved. Press Download to try again: sealbox restarts the helper. If it keeps failing, reload the page or use \`sealbox receive\`.`,
  );
}

/** Settles like `promise`, or rejects with `error()` after `ms`. */
function within(promise, ms, error) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The page's only Trusted Types policy (UI_CSP allows just this one): it yields the
 *  download worker's URL and refuses any other. */
const workerUrlPolicy = globalThis.trustedTypes?.createPolicy("sealbox-worker", {
  createScriptURL(url) {
    if (url !== WORKER_URL) throw new TypeError("only the download worker may be registered");
    return url;
  },
});

/** Forgets the worker, unregistering it (best effort), so the next download starts a
 *  fresh one. */
async function dropWorker() {
  workerRegistration = null;
  try {
    const registration = await within(
      navigator.serviceWorker.getRegistration(WORKER_SCOPE),
      1000,
      () => new Error("no answer"),
    );
    await registration?.unregister();
  } catch {
    // Not registered, or the browser does not answer either: the next register() tries.
  }
}

/** Registers (once) and returns the active download worker, or fails after
 *  WORKER_START_TIMEOUT_MS. */
export async function downloadWorker() {
  workerRegistration ??= within(
    (async () => {
      const url = workerUrlPolicy ? workerUrlPolicy.createScriptURL(WORKER_URL) : WORKER_URL;
      await navigator.serviceWorker.register(url, { scope: WORKER_SCOPE, type: "module", updateViaCache: "none" });
      const registration = await navigator.serviceWorker.ready;
      if (!registration.active) throw new DownloadError("The download helper did not start.");
      return registration;
    })(),
    WORKER_START_TIMEOUT_MS,
    () => workerTimeout(`did not start within ${WORKER_START_TIMEOUT_MS / 1000} s`),
  );
  try {
    return (await workerRegistration).active;
  } catch (error) {
    await dropWorker();
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
      const get = async (url) => {
        try {
          return await fetch(url, { headers: secretHeaders(job.secret), cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" });
        } catch {
          throw networkError();
        }
      };
      let response = await get(job.url);
      if (response.status === 401 && job.refresh) {
        // The token expired or was renewed before this file started: once more, renewed.
        await response.body?.cancel().catch(() => {});
        job.url = await job.refresh();
        response = await get(job.url);
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
    try {
      await this.workerAttempt();
    } catch (error) {
      if (error?.status !== 401 || !this.job.refresh) throw error;
      // The token expired or was renewed before the worker's fetch: once more, renewed.
      this.job.url = await this.job.refresh();
      await this.workerAttempt();
    }
  }

  /** One hand-over of the job to the worker; a failed job rejects with its error. */
  async workerAttempt() {
    const { job } = this;
    const worker = await downloadWorker();
    const channel = new MessageChannel();
    const id = randomId();
    let heard = performance.now();
    const finished = new Promise((resolve, reject) => {
      channel.port1.onmessage = ({ data }) => {
        heard = performance.now();
        if (data.type === "progress") this.emit("progress", { bytes: data.bytes, total: this.total });
        else if (data.type === "done") resolve();
        else if (data.type === "failed") {
          reject(Object.assign(new DownloadError(data.message), { kind: data.kind, name: data.errorName ?? "DownloadError", status: data.status ?? null }));
        }
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
    try {
      await within(ready, WORKER_START_TIMEOUT_MS, () => workerTimeout(`did not take the download within ${WORKER_START_TIMEOUT_MS / 1000} s`));
      heard = performance.now();
    } catch (error) {
      channel.port1.close();
      await dropWorker();
      this.emit("failed", { error });
      throw error;
    }
    let silent = null;
    const stalled = new Promise((_, reject) => {
      silent = reject;
    });
    const ping = setInterval(() => {
      if (performance.now() - heard > WORKER_SILENCE_TIMEOUT_MS) {
        silent(workerTimeout(`stopped answering for ${WORKER_SILENCE_TIMEOUT_MS / 1000} s`));
        return;
      }
      worker.postMessage({ type: "ping", id });
    }, PING_EVERY_MS);
    try {
      const link = document.createElement("a");
      link.href = `${DOWNLOAD_PREFIX}${id}`;
      link.rel = "noopener noreferrer";
      link.hidden = true;
      document.body.append(link);
      link.click();
      link.remove();
      await Promise.race([finished, stalled]);
      this.emit("done", {});
    } catch (error) {
      if (error?.status !== 401) this.emit("failed", { error });
      if (performance.now() - heard > WORKER_SILENCE_TIMEOUT_MS) await dropWorker();
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
