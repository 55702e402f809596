// The download helper: a service worker of sealbox's own origin, served as
// /t/download-worker.js with scope /t/ (see receiver.js). The page hands it a job over a
// MessageChannel (the file's URL under a download token, the link secret, and for an
// end-to-end transfer the key and client file id), then navigates to /t/download/{job
// id}. The worker answers that navigation as an attachment whose body is the fetched
// ciphertext piped through the SBX1 decryptor, so the browser's download manager writes
// the plaintext to disk as it arrives. A job is used once and forgotten; the key never
// leaves this worker's memory. Every other request passes through untouched.

import { decryptStream } from "/assets/js/sbx1.js";
import { SECRET_HEADER } from "/assets/js/transfer-link.js";

const DOWNLOAD_PREFIX = "/t/download/";
/** A job not started within this long is dropped (the page starts it at once). */
const JOB_TTL_MS = 60_000;
const jobs = new Map();
/** The ports of downloads being answered, by job id: a ping for one is answered on it, so
 *  the page knows this worker is alive. */
const running = new Map();

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("message", (event) => {
  const job = event.data;
  if (job?.type === "ping") {
    // The event keeps the worker up; the answer tells the page it is not stuck.
    running.get(job.id)?.postMessage({ type: "pong" });
    return;
  }
  if (job?.type !== "prepare" || !event.ports[0]) return;
  const port = event.ports[0];
  jobs.set(job.id, { ...job, port });
  setTimeout(() => jobs.delete(job.id), JOB_TTL_MS);
  port.postMessage({ type: "ready" });
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith(DOWNLOAD_PREFIX)) return;
  const id = url.pathname.slice(DOWNLOAD_PREFIX.length);
  const job = jobs.get(id);
  jobs.delete(id);
  event.respondWith(job ? answer(job) : gone());
});

/** A navigation answered 204 leaves the page where it is. */
function gone() {
  return new Response(null, { status: 204 });
}

function fail(job, error, fallback) {
  running.delete(job.id);
  job.port.postMessage({
    type: "failed",
    message: error?.message ?? fallback,
    kind: error?.kind ?? null,
    errorName: error?.name ?? null,
    status: error?.status ?? null,
  });
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body?.error?.message) return body.error.message;
  } catch {
    // Not an error envelope.
  }
  return `The server answered ${response.status}.`;
}

function disposition(name) {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_") || "download";
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

async function answer(job) {
  running.set(job.id, job.port);
  let response;
  try {
    const headers = job.secret ? { [SECRET_HEADER]: job.secret } : {};
    response = await fetch(job.url, { headers, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" });
  } catch {
    fail(job, null, "The server could not be reached. Check the connection and try again.");
    return gone();
  }
  if (!response.ok) {
    fail(job, { message: await errorMessage(response), name: "ApiError", status: response.status });
    return gone();
  }
  let source = response.body;
  if (job.key) {
    const onProgress = (bytes) => job.port.postMessage({ type: "progress", bytes });
    source = source.pipeThrough(decryptStream(new Uint8Array(job.key), new Uint8Array(job.fileId), job.size, onProgress));
  }
  const reader = source.getReader();
  let sent = 0;
  // A pulled stream: the browser's download manager sets the pace (backpressure), and an
  // error (a segment that does not authenticate, a cut connection) errors the download.
  const body = new ReadableStream({
    async pull(controller) {
      try {
        const { value, done } = await reader.read();
        if (done) {
          controller.close();
          running.delete(job.id);
          job.port.postMessage({ type: "done" });
          return;
        }
        sent += value.byteLength;
        if (!job.key) job.port.postMessage({ type: "progress", bytes: sent });
        controller.enqueue(value);
      } catch (error) {
        fail(job, error, "The download failed.");
        controller.error(error);
      }
    },
    cancel(reason) {
      reader.cancel(reason).catch(() => {});
      fail(job, { name: "AbortError", message: "The download was cancelled." });
    },
  });
  return new Response(body, {
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Disposition": disposition(job.name),
      "Content-Length": String(job.plaintextSize),
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    },
  });
}
