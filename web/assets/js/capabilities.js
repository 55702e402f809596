// How this browser writes a decrypted download to disk, decided once, by feature
// detection, with the reason recorded for the page to show. Both ways stream with bounded
// memory; there is deliberately no third way that would hold a file in memory.
//
// - "picker": `showSaveFilePicker` (Chromium-based browsers): the page pipes the fetched
//   ciphertext through a decrypting TransformStream into the file the user picked.
// - "worker": a service worker of this origin (`/t/download-worker.js`) fetches, decrypts
//   and answers the browser's download as an attachment (Firefox, Safari).
// - "none": neither is available (an insecure context, or service workers disabled).
//
// `?download=picker` or `?download=worker` in the page's address forces one (to compare,
// or to work around a browser's quirk); it is honoured only if the browser has it.

export const PICKER = "picker";
export const WORKER = "worker";
export const NONE = "none";

function detect(location, scope) {
  const hasPicker = typeof scope.showSaveFilePicker === "function";
  const hasWorker = Boolean(scope.isSecureContext && scope.navigator?.serviceWorker);
  const forced = new URL(String(location)).searchParams.get("download");
  if (forced === PICKER && hasPicker) {
    return { method: PICKER, reason: "Files are written straight to the place you pick (chosen by ?download=picker)." };
  }
  if (forced === WORKER && hasWorker) {
    return { method: WORKER, reason: "Files download through sealbox's built-in helper (chosen by ?download=worker)." };
  }
  if (hasPicker) {
    return { method: PICKER, reason: "Your browser asks where to save each file and sealbox decrypts straight into it." };
  }
  if (hasWorker) {
    return { method: WORKER, reason: "Your browser will download through sealbox's built-in helper, which decrypts as the file arrives." };
  }
  return {
    method: NONE,
    reason: scope.isSecureContext
      ? "This browser has neither a save dialog for pages nor service workers, so it cannot decrypt a download as it arrives. Use another browser or `sealbox receive`."
      : "This page is not served over HTTPS, so the browser withholds what decrypting a download needs. Open the link over HTTPS, or use `sealbox receive`.",
  };
}

/** `{method, reason}` for this page; computed once. */
export const downloads = detect(globalThis.location, globalThis);
