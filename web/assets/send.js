// /send: a signed-in user picks files, names the transfer, writes a message, picks the
// expiry, a download limit, a password and the mode (end-to-end by default), and sends.
// js/sender.js encrypts and uploads; this module owns the form, the progress and the link.

import { Session } from "./js/api.js";
import { TransferSender, checkFiles, forgetPendingSend, matchFiles, pendingSend } from "./js/sender.js";
import { clear, formatBytes, setBusy, showError, showFieldError } from "./forms.js";

const $ = (id) => document.getElementById(id);
const session = new Session();
const form = $("send-form");
const problem = $("problem");


const pending = pendingSend();

if (!session.signedIn) {
  $("signed-out").hidden = false;
} else {
  form.addEventListener("submit", send);
  $("resume-form").addEventListener("submit", resume);
  $("discard").addEventListener("click", () => {
    forgetPendingSend();
    $("resume-form").hidden = true;
    form.hidden = false;
  });
  if (pending) {
    const names = pending.files.map((f) => f.name).join(", ");
    $("resume-summary").textContent = `A send of ${pending.files.length} ${pending.files.length === 1 ? "file" : "files"} (${names}) was interrupted.`;
    $("resume-form").hidden = false;
  } else {
    form.hidden = false;
  }
  $("copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("link").value);
      $("copied").textContent = "Copied.";
    } catch {
      $("link").select();
      $("copied").textContent = "Select the link and copy it.";
    }
  });
}

async function send(event) {
  event.preventDefault();
  clear(problem, form);
  const { files, name, message, recipients, expiresInHours, maxDownloads, password, e2e } = form.elements;
  const picked = [...files.files];
  const wrong = checkFiles(picked);
  if (wrong) {
    showFieldError(problem, form, files, wrong);
    return;
  }
  const options = {
    files: picked,
    name: name.value.trim() || (picked.length === 1 ? "1 file" : `${picked.length} files`),
    message: message.value.trim(),
    expiresInHours: Number(expiresInHours.value) || undefined,
    maxDownloads: Number(maxDownloads.value) || undefined,
    password: password.value || undefined,
    recipients: recipients.value.split(",").map((r) => r.trim()).filter(Boolean).map((email) => ({ email })),
    e2e: e2e.checked,
  };
  setBusy(form, true);
  try {
    await run(new TransferSender(session, options), (sender) => sender.run(), form, problem, options.e2e);
  } finally {
    setBusy(form, false);
  }
}

async function resume(event) {
  event.preventDefault();
  const resumeForm = $("resume-form");
  const box = $("resume-problem");
  clear(box, resumeForm);
  const matched = matchFiles(pending, [...resumeForm.elements.files.files]);
  if (matched.problem) {
    showFieldError(box, resumeForm, resumeForm.elements.files, matched.problem);
    return;
  }
  setBusy(resumeForm, true);
  try {
    await run(TransferSender.resuming(session, pending, matched.files), (sender) => sender.resume(), resumeForm, box, pending.e2e);
  } finally {
    setBusy(resumeForm, false);
  }
}

/** Runs `sender`, showing its progress, then the link (or the error in `box`). */
async function run(sender, start, shownForm, box, e2e) {
  $("progress").hidden = false;
  const started = performance.now();
  sender.addEventListener("progress", ({ detail }) => {
    const seconds = (performance.now() - started) / 1000;
    const speed = detail.sentAll / Math.max(seconds, 0.001);
    const left = speed > 0 ? Math.round((detail.totalAll - detail.sentAll) / speed) : 0;
    $("total-progress").value = detail.totalAll ? detail.sentAll / detail.totalAll : 1;
    $("progress-text").textContent = `${detail.file.name}: ${formatBytes(detail.bytes)} of ${formatBytes(detail.total)} · `
      + `total ${formatBytes(detail.sentAll)} of ${formatBytes(detail.totalAll)} · ${formatBytes(speed)}/s · ${left} s left`;
  });
  sender.addEventListener("retry", ({ detail }) => {
    $("progress-text").textContent = `${detail.file.name}: the connection dropped (${detail.error.message}); resuming…`;
  });
  sender.addEventListener("resumed", ({ detail }) => {
    $("resume-note").textContent = `${detail.file.name}: resuming from ${formatBytes(detail.offset)} of ${formatBytes(detail.total)}, which the server already has.`;
  });
  try {
    const { link } = await start(sender);
    shownForm.hidden = true;
    $("progress").hidden = true;
    $("link").value = link;
    $("key-warning").hidden = !e2e;
    $("sent").hidden = false;
    $("link").focus();
    $("link").select();
  } catch (error) {
    $("progress").hidden = true;
    showError(box, error, shownForm);
  }
}
