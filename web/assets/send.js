// /send: a signed-in user picks files, names the transfer, writes a message, picks the
// expiry, a download limit, a password and the mode (end-to-end by default), and sends.
// js/sender.js encrypts and uploads; this module owns the form, the progress and the link.
// Files come from the file input, the folder input (webkitdirectory) or a drop of files
// and folders (webkitGetAsEntry); recipients are typed emails and members of the
// organization picked from a search (GET /v1/users/search), added by their email.

import { Session } from "./js/api.js";
import {
  TransferSender, checkFiles, checkMessage, filesFromEntries, forgetPendingSend, matchFiles, pendingSend, sendName,
} from "./js/sender.js";
import { clear, formatBytes, setBusy, showError, showFieldError } from "./forms.js";

const $ = (id) => document.getElementById(id);
const session = new Session();
const form = $("send-form");
const problem = $("problem");


const pending = pendingSend();
/** Files dropped on the page (with their folder paths remembered by sender.js). */
let dropped = [];
/** Members added from the search: [{email, displayName}]. */
const members = [];

/** Every file picked or dropped, in that order. */
function pickedFiles() {
  return [...form.elements.files.files, ...form.elements.folder.files, ...dropped];
}

function showPicked() {
  const files = pickedFiles();
  const list = $("picked");
  list.replaceChildren(...files.slice(0, 200).map((file) => {
    const item = document.createElement("li");
    item.textContent = `${sendName(file)} (${formatBytes(file.size)})`;
    return item;
  }));
  $("picked-summary").textContent = files.length
    ? `${files.length} ${files.length === 1 ? "file" : "files"}, ${formatBytes(files.reduce((n, f) => n + f.size, 0))}`
    : "";
}

function setUpDrop() {
  const zone = $("drop-zone");
  // The whole form takes drops, so a near miss does not open the file in the tab.
  form.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.dataset.over = "true";
  });
  form.addEventListener("dragleave", () => { zone.dataset.over = "false"; });
  form.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.dataset.over = "false";
    const items = [...(event.dataTransfer?.items ?? [])].filter((item) => item.kind === "file");
    const entries = items.map((item) => item.webkitGetAsEntry?.() ?? null);
    try {
      dropped = entries.every(Boolean)
        ? [...dropped, ...await filesFromEntries(entries)]
        : [...dropped, ...event.dataTransfer.files];
    } catch (error) {
      showError(problem, error, form);
    }
    showPicked();
  });
}

/** The member picker: a combobox whose listbox shows search results. */
function setUpMembers() {
  const input = $("send-member-search");
  const listbox = $("send-member-options");
  const status = $("send-member-status");
  let results = [];
  let active = -1;
  let timer = null;
  let asked = 0;
  const close = () => {
    listbox.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  };
  const highlight = (index) => {
    active = index;
    [...listbox.children].forEach((option, i) => option.setAttribute("aria-selected", String(i === index)));
    if (index >= 0) input.setAttribute("aria-activedescendant", listbox.children[index].id);
    else input.removeAttribute("aria-activedescendant");
  };
  const choose = (index) => {
    const user = results[index];
    if (!user) return;
    if (!members.some((m) => m.email === user.email)) members.push({ email: user.email, displayName: user.displayName });
    showMembers();
    status.textContent = `Added ${user.displayName} (${user.email}).`;
    input.value = "";
    close();
    input.focus();
  };
  const search = async () => {
    const query = input.value.trim();
    if (query.length < 2) {
      close();
      return;
    }
    const mine = ++asked;
    let found;
    try {
      found = await session.call("GET", `/v1/users/search?q=${encodeURIComponent(query)}`);
    } catch (error) {
      status.textContent = error.message;
      return;
    }
    if (mine !== asked) return;
    results = found;
    listbox.replaceChildren(...found.map((user, index) => {
      const option = document.createElement("li");
      option.id = `send-member-option-${index}`;
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", "false");
      option.textContent = `${user.displayName} <${user.email}>`;
      // mousedown, not click: the input keeps its focus.
      option.addEventListener("mousedown", (event) => {
        event.preventDefault();
        choose(index);
      });
      return option;
    }));
    status.textContent = found.length ? `${found.length} matching ${found.length === 1 ? "member" : "members"}.` : "No member matches.";
    listbox.hidden = found.length === 0;
    input.setAttribute("aria-expanded", String(found.length > 0));
    highlight(found.length ? 0 : -1);
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && results.length) {
      event.preventDefault();
      highlight((active + 1) % results.length);
    } else if (event.key === "ArrowUp" && results.length) {
      event.preventDefault();
      highlight((active - 1 + results.length) % results.length);
    } else if (event.key === "Enter") {
      // Enter picks the highlighted member instead of submitting the form.
      if (!listbox.hidden && active >= 0) {
        event.preventDefault();
        choose(active);
      }
    } else if (event.key === "Escape") {
      close();
    }
  });
  input.addEventListener("blur", () => setTimeout(close, 100));
}

function showMembers() {
  $("send-members").replaceChildren(...members.map((member, index) => {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = `${member.displayName} <${member.email}>`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove ${member.displayName}`);
    remove.addEventListener("click", () => {
      members.splice(index, 1);
      showMembers();
      $("send-member-status").textContent = `Removed ${member.displayName}.`;
      $("send-member-search").focus();
    });
    item.append(label, remove);
    return item;
  }));
}

if (!session.signedIn) {
  $("signed-out").hidden = false;
} else {
  form.addEventListener("submit", send);
  form.elements.files.addEventListener("change", showPicked);
  form.elements.folder.addEventListener("change", showPicked);
  setUpDrop();
  setUpMembers();
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
  const picked = pickedFiles();
  const wrong = checkFiles(picked);
  if (wrong) {
    showFieldError(problem, form, files, wrong);
    return;
  }
  const tooLong = checkMessage(message.value.trim());
  if (tooLong) {
    showFieldError(problem, form, message, tooLong);
    return;
  }
  const emails = recipients.value.split(",").map((r) => r.trim()).filter(Boolean);
  for (const member of members) if (!emails.includes(member.email)) emails.push(member.email);
  const options = {
    files: picked,
    name: name.value.trim() || (picked.length === 1 ? "1 file" : `${picked.length} files`),
    message: message.value.trim(),
    expiresInHours: Number(expiresInHours.value) || undefined,
    maxDownloads: Number(maxDownloads.value) || undefined,
    password: password.value || undefined,
    recipients: emails.map((email) => ({ email })),
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
  const matched = matchFiles(pending, [...resumeForm.elements.files.files, ...resumeForm.elements.folder.files]);
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
