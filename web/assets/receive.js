// The public receive page, /t/{id}#s=...&k=...: no account. It reads the link
// (transfer-link.js), shows the transfer (name, message, files, expiry, downloads left),
// asks for the password when one is set, then downloads each file, or all of them one
// after another, decrypting end-to-end transfers in the browser as they stream to disk
// (js/receiver.js). The key stays in this page (and the download worker's memory); the
// link secret goes only in the X-Transfer-Secret header.
//
// The download token (from unlock) works for `expiresIn` seconds; a "Download all" of
// many big files can take longer. While downloads run, the page renews it when half its
// life is gone (POST .../renew with the token and the link secret: the same download
// session, so not counted again, and no password kept), and before each file. A file
// already streaming is never cut by the expiry; a file whose first answer is 401 is
// asked for again under a renewed token. If the token could not be renewed in time (the
// computer slept), a transfer without a password unlocks afresh (a new download), one
// with a password asks for it again.

import { ApiError, PublicTransfer, request } from "./js/api.js";
import { NONE, PICKER, downloads } from "./js/capabilities.js";
import { DownloadError, FileReceiver, describeFailure } from "./js/receiver.js";
import { openName, safeDownloadName, splitRelativePath, viewMessage } from "./js/transfer-e2e.js";
import { LinkError, parseLink } from "./js/transfer-link.js";
import { formatBytes, sentence } from "./forms.js";

const $ = (id) => document.getElementById(id);
const INCOMPLETE = "This link is incomplete or wrong";

/** The page's state: the link, the transfer as shown, the download token (with when it
 *  expires and how long it lasts, on this page's clock), the renewal under way. */
const state = {
  link: null,
  api: null,
  view: null,
  files: [],
  token: null,
  tokenExpires: 0,
  tokenLife: 0,
  renewing: null,
  keeper: null,
  busy: false,
};

function problem(text) {
  $("loading").hidden = true;
  const box = $("problem");
  box.replaceChildren();
  const p = document.createElement("p");
  p.textContent = text;
  box.append(p);
  box.hidden = false;
  box.focus();
}


function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return "";
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** What a failed public call means, for this page. */
function explain(error) {
  if (error instanceof ApiError && error.status === 404) {
    return `${INCOMPLETE}: no transfer answers to it. Check that you opened the whole link.`;
  }
  return sentence(error.message);
}

async function start() {
  try {
    state.link = parseLink(location.href);
  } catch (error) {
    problem(`${INCOMPLETE}: ${error instanceof LinkError ? error.message : "it cannot be read"}. Nothing was downloaded.`);
    return;
  }
  state.api = new PublicTransfer(state.link.transferId, state.link.secret);
  try {
    state.view = await state.api.view();
  } catch (error) {
    problem(explain(error));
    return;
  }
  if (state.view.e2e && !state.link.key) {
    problem(`${INCOMPLETE}: it lacks the key that opens these files (the part after #). Nothing was downloaded.`);
    return;
  }
  try {
    await readFiles(state.view);
    state.view.message = await viewMessage(state.view, state.link);
  } catch {
    problem(`${INCOMPLETE}: its key does not open this transfer. Nothing was downloaded.`);
    return;
  }
  show();
}

/** The files as shown: names opened with the key (e2e) or as the server gives them. */
async function readFiles(view) {
  const files = [];
  for (const file of view.files) {
    if (view.e2e) {
      const opened = await openName(state.link.key, state.link.transferId, file.name);
      files.push({ id: file.id, size: file.size, name: opened.name, fileId: opened.fileId });
    } else {
      files.push({ id: file.id, size: file.size, name: file.name ?? null, fileId: null });
    }
  }
  state.files = files;
}

function show() {
  const { view } = state;
  $("loading").hidden = true;
  $("transfer-name").textContent = view.name || "Files for you";
  document.title = `${view.name || "Files for you"} · sealbox`;
  $("mode").textContent = view.e2e
    ? "End-to-end encrypted: these files are decrypted here, in your browser, with the key in your link. The server cannot read them."
    : "Encrypted by the server: it decrypts the files as you download them.";
  if (view.message) {
    $("message").textContent = view.message;
    $("message").hidden = false;
  }
  $("expires").textContent = new Date(view.expiresAt).toLocaleString();
  $("downloads-left").textContent = view.remainingDownloads ?? "no limit";
  const total = state.files.reduce((n, f) => n + receiverFor(f).total, 0);
  $("file-summary").textContent = `${state.files.length} (${formatBytes(total)})`;
  $("transfer").hidden = false;
  $("download-all").addEventListener("click", downloadAll);
  if (view.passwordRequired) {
    $("password-form").hidden = false;
    $("password-form").addEventListener("submit", unlockWithPassword);
    $("transfer-password").focus();
  } else {
    showFiles();
  }
}

function receiverFor(file, token) {
  return new FileReceiver({
    url: token ? state.api.fileUrl(file.id, token) : "",
    refresh: () => renewedUrl(file),
    secret: state.link.secret,
    size: file.size,
    name: safeDownloadName(file.name ?? "download"),
    key: state.view.e2e ? state.link.key : null,
    fileId: file.fileId,
  });
}

async function unlockWithPassword(event) {
  event.preventDefault();
  const form = $("password-form");
  const box = $("password-problem");
  box.hidden = true;
  const field = $("transfer-password");
  for (const control of form.elements) control.disabled = true;
  try {
    adopt(await state.api.unlock(field.value));
    // The server opens server-sealed names, and shows the message, once it holds the
    // password's token.
    state.view = await state.api.view(state.token);
    await readFiles(state.view);
    state.view.message = await viewMessage(state.view, state.link);
    if (state.view.message) {
      $("message").textContent = state.view.message;
      $("message").hidden = false;
    }
    form.hidden = true;
    showFiles();
  } catch (error) {
    box.textContent = error.status === 429 && error.retryAfter
      ? `${sentence(error.message)} Try again in ${formatDuration(error.retryAfter)}.`
      : sentence(error.message);
    box.hidden = false;
    field.setAttribute("aria-invalid", "true");
    field.focus();
  } finally {
    for (const control of form.elements) control.disabled = false;
  }
}

/** Keeps a download token from unlock or renewal. */
function adopt(answer) {
  state.token = answer.downloadToken;
  state.tokenLife = Math.max(1, answer.expiresIn) * 1000;
  state.tokenExpires = performance.now() + state.tokenLife;
}

/** Whether the token has lived half its life (time to renew it). */
function tokenAging() {
  return state.tokenExpires - performance.now() < state.tokenLife / 2;
}

/** Renews the token (one renewal at a time: a token renews once). If it can no longer
 *  be renewed, a transfer without a password unlocks afresh; one with a password asks
 *  for it again. */
function renew() {
  state.renewing ??= (async () => {
    try {
      adopt(await request("POST", `${state.api.base}/renew`, {
        body: { downloadToken: state.token },
        secret: state.link.secret,
      }));
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      state.token = null;
      if (state.view.passwordRequired) {
        askPasswordAgain();
        throw new DownloadError("The download session ended. Enter the password again to go on.", error);
      }
      adopt(await state.api.unlock(""));
    } finally {
      state.renewing = null;
    }
  })();
  return state.renewing;
}

/** A live download token: from the password, or (no password) asked for on the first
 *  download; renewed first when half its life is gone. */
async function token() {
  if (state.renewing) await state.renewing;
  if (!state.token) {
    if (state.view.passwordRequired) {
      askPasswordAgain();
      throw new DownloadError("The download session ended. Enter the password again to go on.");
    }
    adopt(await state.api.unlock(""));
  } else if (tokenAging()) {
    await renew();
  }
  return state.token;
}

/** The URL of `file` under a token renewed now (a file answered 401 asks for it). */
async function renewedUrl(file) {
  await (state.renewing ?? renew());
  return state.api.fileUrl(file.id, state.token);
}

/** While downloads run, renews the token in the background before it expires, so the
 *  next file starts with a live one however long the current file takes. */
function keepTokenFresh(on) {
  clearInterval(state.keeper);
  state.keeper = null;
  if (!on) return;
  // A clock check, not a request: a request goes only when half the token's life is gone.
  state.keeper = setInterval(() => {
    if (state.token && !state.renewing && tokenAging()) renew().catch(() => {});
  }, 250);
}

/** Shows the password form again (the session could not be renewed). */
function askPasswordAgain() {
  const form = $("password-form");
  if (!form.hidden) return;
  $("password-problem").textContent = "The download session ended. Enter the password again to go on.";
  $("password-problem").hidden = false;
  form.hidden = false;
}

function showFiles() {
  const list = $("files");
  list.replaceChildren();
  state.files.forEach((file, index) => {
    const row = $("file-row").content.firstElementChild.cloneNode(true);
    row.dataset.index = String(index);
    row.querySelector(".file-name").textContent = file.name ?? `File ${index + 1}`;
    row.querySelector(".file-size").textContent = formatBytes(receiverFor(file).total);
    const button = row.querySelector(".file-download");
    button.setAttribute("aria-label", `Download ${file.name ?? `file ${index + 1}`}`);
    button.addEventListener("click", () => downloadOne(index));
    file.row = row;
    list.append(row);
  });
  $("method").textContent = downloads.reason;
  $("downloads").hidden = false;
  if (downloads.method === NONE && state.view.e2e) {
    for (const button of document.querySelectorAll("#downloads button")) button.disabled = true;
  }
}

function setBusy(busy) {
  state.busy = busy;
  keepTokenFresh(busy);
  for (const button of document.querySelectorAll("#downloads button")) button.disabled = busy;
}

function outcome(kind, text) {
  const box = $("outcome");
  box.dataset.kind = kind;
  box.textContent = text;
  box.hidden = false;
}

/** Asks where to save (picker) before anything awaits: the dialog needs the click. */
function pickFile(file) {
  return window.showSaveFilePicker({ suggestedName: safeDownloadName(file.name ?? "download") });
}

async function downloadOne(index) {
  if (state.busy) return;
  const file = state.files[index];
  let handle = null;
  try {
    if (downloads.method === PICKER) handle = await pickFile(file);
  } catch (error) {
    if (error?.name !== "AbortError") outcome("error", describeFailure(error));
    return;
  }
  setBusy(true);
  try {
    await receive(file, handle);
    outcome("success", `${file.name} is downloaded.`);
  } catch (error) {
    outcome("error", `${file.name}: ${describeFailure(error)}`);
  } finally {
    setBusy(false);
  }
}

async function downloadAll() {
  if (state.busy) return;
  let directory = null;
  try {
    if (downloads.method === PICKER) directory = await window.showDirectoryPicker({ mode: "readwrite" });
  } catch (error) {
    if (error?.name !== "AbortError") outcome("error", describeFailure(error));
    return;
  }
  setBusy(true);
  let done = 0;
  try {
    for (const file of state.files) {
      const handle = directory ? await fileIn(directory, file.name ?? "download") : null;
      await receive(file, handle);
      done += 1;
    }
    outcome("success", `All ${done} ${done === 1 ? "file is" : "files are"} downloaded.`);
  } catch (error) {
    outcome("error", `Stopped after ${done} of ${state.files.length}: ${describeFailure(error)}`);
  } finally {
    setBusy(false);
  }
}

/** A file handle for `name` (a relative path from a folder send) inside `directory`. */
async function fileIn(directory, name) {
  const parts = splitRelativePath(name);
  const base = parts.pop();
  let dir = directory;
  for (const part of parts) dir = await dir.getDirectoryHandle(part, { create: true });
  return dir.getFileHandle(base, { create: true });
}

/** Downloads one file, showing its progress in its row. */
async function receive(file, handle) {
  const row = file.row;
  const bar = row.querySelector(".file-progress");
  const status = row.querySelector(".file-status");
  row.dataset.state = "running";
  bar.hidden = false;
  bar.value = 0;
  status.textContent = "Starting…";
  let receiver;
  try {
    receiver = receiverFor(file, await token());
  } catch (error) {
    row.dataset.state = "failed";
    status.textContent = sentence(error.message);
    throw new DownloadError(sentence(error.message), error);
  }
  const started = performance.now();
  receiver.addEventListener("progress", ({ detail }) => {
    const seconds = (performance.now() - started) / 1000;
    const speed = detail.bytes / Math.max(seconds, 0.001);
    bar.value = detail.total ? detail.bytes / detail.total : 0;
    const left = detail.total > detail.bytes ? `, ${formatDuration((detail.total - detail.bytes) / speed)} left` : "";
    status.textContent = `${formatBytes(detail.bytes)} of ${formatBytes(detail.total)} · ${formatBytes(speed)}/s${left}`;
  });
  try {
    await receiver.run(downloads.method, handle);
    row.dataset.state = "done";
    bar.value = 1;
    status.textContent = state.view.e2e ? "Downloaded and verified." : "Downloaded.";
  } catch (error) {
    row.dataset.state = "failed";
    bar.hidden = true;
    status.textContent = describeFailure(error);
    throw error;
  }
}

// A fragment typed or pasted into the address bar (a corrected key) is a new link: the
// browser does not reload for it, so the page starts over itself.
window.addEventListener("hashchange", () => location.reload());
start();
