// /app/files: the caller's encrypted files (src/http/files.rs, file_shares.rs).
//
// Files are encrypted by the server as they stream in (server mode, docs/crypto.md), so an
// upload is the file's plain bytes: presign (size checked against the limits and the quota
// before a byte moves), tus PATCHes of at most CHUNK bytes each read from File.slice(), a
// HEAD after a failure to continue from the offset the server holds, then finalize. The
// page never holds more than one chunk. Names are sealed by the server too: listing them
// needs the user secret (the vault bar). Downloads are a short-lived link the browser
// opens itself, so the file streams to disk and never sits whole in the page.
//
// An upload in progress is recorded in this tab's sessionStorage (file id, upload URL,
// name, size, modification time; no secret), so after a reload the user picks the same
// file again and it continues where the server stopped.

import {
  busy, colleagues, confirmAction, el, empty, field, formatBytes, isUnlocked, loading, memberSelect,
  notice, onVaultChange, rfc3339, say, vaultBar, vaultCall, when,
} from "./common-vault.js";
import { table } from "../dom.js";
import { errorOf, networkError } from "../../js/api.js";

/** Bytes per PATCH: 8 MiB, the transfer sender's size. */
const CHUNK = 8 * 1024 * 1024;
const TUS = { "Tus-Resumable": "1.0.0" };
const MAX_FAILURES = 8;
const PENDING = "sealbox.file-uploads";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function pending() {
  try {
    return JSON.parse(sessionStorage.getItem(PENDING) ?? "[]");
  } catch {
    return [];
  }
}

function savePending(list) {
  if (list.length) sessionStorage.setItem(PENDING, JSON.stringify(list));
  else sessionStorage.removeItem(PENDING);
}

async function tus(url, init) {
  let response;
  try {
    response = await fetch(url, { ...init, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw networkError();
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

function retryable(error) {
  if (error.name === "AbortError") return false;
  return error.status === 0 || error.status >= 500 || error.status === 409 || error.status === 429 || error.status === 423;
}

/**
 * Uploads `file` to `record.uploadUrl` from the server's offset, reporting `progress(sent,
 * total)`; resolves when every byte is there. `signal` aborts between chunks.
 */
async function pushBytes(file, record, progress, signal) {
  const total = file.size;
  let offset = Number((await tus(record.uploadUrl, { method: "HEAD", headers: TUS })).headers.get("Upload-Offset"));
  progress(offset, total);
  let failures = 0;
  let last = null;
  while (offset < total) {
    if (signal.aborted) throw new DOMException("The upload was paused.", "AbortError");
    if (failures > 0) {
      if (failures >= MAX_FAILURES) throw new Error(`The upload failed ${failures} times in a row: ${last.message}`);
      await sleep(Math.min(250 * 2 ** failures, 8000));
      try {
        offset = Number((await tus(record.uploadUrl, { method: "HEAD", headers: TUS })).headers.get("Upload-Offset"));
      } catch (error) {
        if (!retryable(error)) throw error;
        failures += 1;
        last = error;
        continue;
      }
    }
    if (file.size !== record.size || file.lastModified !== record.lastModified) {
      throw new Error(`${file.name} changed on disk while it was uploading. Upload it again.`);
    }
    const chunk = file.slice(offset, Math.min(offset + CHUNK, total));
    try {
      const answer = await tus(record.uploadUrl, {
        method: "PATCH",
        headers: { ...TUS, "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
        body: chunk,
        signal,
      });
      offset = Number(answer.headers.get("Upload-Offset"));
      failures = 0;
    } catch (error) {
      if (!retryable(error)) throw error;
      failures += 1;
      last = error;
    }
    progress(offset, total);
  }
}

export async function render(root, ctx, params = {}) {
  // /app/files/:id: the same page, listing only that file (a link to hand a colleague).
  const only = params.id ?? null;
  const canUpload = ctx.can("files:write");
  const canDelete = ctx.can("files:delete");
  const canShare = ctx.can("shares:write");
  const uploads = new Set();
  let status = null;
  let files = [];
  let shared = [];
  let query = "";
  let sort = "updated-desc";

  root.append(el("h1", {}, "Files"), el("p", { className: "lead" }, "Files are encrypted by sealbox as they arrive and stored encrypted; their names too. Listing and downloading them needs your user secret."));
  const barSlot = el("div");
  const uploadSection = el("section", { className: "panel", "aria-labelledby": "upload-h" });
  const listSection = el("section", { className: "panel", "aria-labelledby": "files-h" });
  const sharedSection = el("section", { className: "panel", "aria-labelledby": "shared-h" });
  root.append(barSlot, uploadSection, listSection, sharedSection);

  // --- upload -------------------------------------------------------------------------
  const progressList = el("ul", { className: "files uploads", "aria-live": "polite" });
  if (canUpload) {
    const input = el("input", { type: "file", id: "upload-input", multiple: true });
    const problem = notice();
    const form = el("form", { id: "upload-form" }, field("Files to upload", input, "Any size: the upload streams in pieces and continues after a dropped connection."), problem, el("button", { type: "submit", className: "primary" }, "Upload"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      problem.clear();
      const picked = [...input.files];
      if (!picked.length) {
        problem.show("Pick at least one file.");
        return;
      }
      input.value = "";
      for (const file of picked) startUpload(file, null);
    });
    uploadSection.append(...[el("h2", { id: "upload-h" }, "Upload"), form, resumeOffer(), progressList].filter(Boolean));
  } else {
    uploadSection.append(el("h2", { id: "upload-h" }, "Upload"), el("p", { className: "hint" }, "Your role cannot upload files (it lacks files:write)."));
  }

  function resumeOffer() {
    const waiting = pending().filter((p) => p.orgId === ctx.org?.id);
    if (!waiting.length) return null;
    const input = el("input", { type: "file", id: "resume-input", multiple: true });
    const problem = notice();
    const box = el("form", { id: "resume-form", className: "notice", "data-kind": "info" },
      el("p", {}, `Unfinished uploads: ${waiting.map((p) => `${p.name} (${formatBytes(p.size)})`).join(", ")}. Pick the same files again to continue where they stopped.`),
      field("Files to continue", input), problem,
      el("div", { className: "actions" }, el("button", { type: "submit" }, "Continue"), el("button", { type: "button", id: "resume-forget", onclick: () => { savePending(pending().filter((p) => p.orgId !== ctx.org?.id)); box.remove(); } }, "Forget them")));
    box.addEventListener("submit", (event) => {
      event.preventDefault();
      problem.clear();
      for (const file of input.files) {
        const record = pending().find((p) => p.orgId === ctx.org?.id && p.name === file.name);
        if (!record) problem.show(`${file.name} is not one of the unfinished uploads.`);
        else if (record.size !== file.size || record.lastModified !== file.lastModified) problem.show(`${file.name} changed on disk since the upload started; upload it as a new file.`);
        else startUpload(file, record);
      }
      if (problem.hidden) box.remove();
    });
    return box;
  }

  function startUpload(file, existing) {
    const bar = el("progress", { max: "100", value: "0", "aria-label": `Upload of ${file.name}` });
    const state = el("span", { className: "file-status" }, "Starting…");
    const pause = el("button", { type: "button" }, "Pause");
    const item = el("li", { className: "file", "data-state": "uploading" }, el("div", { className: "file-head" }, el("span", { className: "file-name" }, file.name), el("span", { className: "file-size" }, formatBytes(file.size))), bar, state, el("div", { className: "actions" }, pause));
    progressList.append(item);
    let controller = new AbortController();
    uploads.add(controller);
    let record = existing;
    const run = async () => {
      item.dataset.state = "uploading";
      pause.textContent = "Pause";
      try {
        if (!record) {
          const presigned = await ctx.api("POST", "/v1/files/presign", { json: { filename: file.name, contentType: file.type || undefined, size: file.size } });
          record = { fileId: presigned.fileId, uploadUrl: new URL(presigned.uploadUrl, location.href).href, name: file.name, size: file.size, lastModified: file.lastModified, orgId: ctx.org?.id };
          savePending([...pending(), record]);
        }
        await pushBytes(file, record, (sent, total) => {
          bar.value = total ? Math.floor((sent / total) * 100) : 100;
          state.textContent = `${formatBytes(sent)} of ${formatBytes(total)}`;
        }, controller.signal);
        state.textContent = "Finishing…";
        await ctx.api("POST", `/v1/files/${encodeURIComponent(record.fileId)}/finalize`);
        savePending(pending().filter((p) => p.fileId !== record.fileId));
        item.dataset.state = "done";
        bar.value = 100;
        state.textContent = "Uploaded and encrypted.";
        pause.remove();
        say(ctx, `${file.name} uploaded.`);
        if (isUnlocked()) refreshFiles();
      } catch (error) {
        if (error.name === "AbortError") {
          item.dataset.state = "paused";
          state.textContent = "Paused.";
          pause.textContent = "Resume";
          return;
        }
        item.dataset.state = "failed";
        state.textContent = error.message;
        item.setAttribute("role", "alert");
        pause.remove();
        if (record && error.status && error.status < 500 && error.status !== 409) {
          savePending(pending().filter((p) => p.fileId !== record.fileId));
        }
      } finally {
        uploads.delete(controller);
      }
    };
    pause.addEventListener("click", () => {
      if (item.dataset.state === "paused") {
        controller = new AbortController();
        uploads.add(controller);
        run();
      } else {
        controller.abort();
      }
    });
    run();
  }

  // --- list ---------------------------------------------------------------------------
  const search = el("input", { type: "search", id: "files-search", placeholder: "Search by name" });
  const sortSelect = el("select", { id: "files-sort" },
    el("option", { value: "updated-desc" }, "Newest first"), el("option", { value: "updated-asc" }, "Oldest first"),
    el("option", { value: "name-asc" }, "Name A–Z"), el("option", { value: "name-desc" }, "Name Z–A"),
    el("option", { value: "size-desc" }, "Largest first"), el("option", { value: "size-asc" }, "Smallest first"));
  search.addEventListener("input", () => {
    query = search.value.trim().toLowerCase();
    drawFiles();
  });
  sortSelect.addEventListener("change", () => {
    sort = sortSelect.value;
    drawFiles();
  });
  const filesBox = el("div", { id: "files-list" });
  const sharedBox = el("div", { id: "shared-list" });
  listSection.append(el("h2", { id: "files-h" }, "Your files"), el("div", { className: "toolbar" }, field("Search", search), field("Sort", sortSelect)), filesBox);
  sharedSection.append(el("h2", { id: "shared-h" }, "Shared with me"), sharedBox);

  function sorted(list) {
    const [key, direction] = sort.split("-");
    const value = (f) => (key === "name" ? f.fileName.toLowerCase() : key === "size" ? f.sizeBytes : f.updatedUtc);
    return [...list].sort((a, b) => {
      const x = value(a);
      const y = value(b);
      const order = x < y ? -1 : x > y ? 1 : 0;
      return direction === "asc" ? order : -order;
    });
  }

  async function download(path, name, problem) {
    try {
      const link = await vaultCall(ctx, "GET", path);
      // The browser fetches the link itself and writes it to disk as it arrives
      // (Content-Disposition: attachment): no Blob of the file in the page.
      const a = el("a", { href: new URL(link.url, location.href).href, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (error) {
      problem.show(error);
    }
  }

  function drawFiles() {
    if (!isUnlocked()) {
      filesBox.replaceChildren(empty("Unlock the vault to see your files' names."));
      return;
    }
    const base = only ? files.filter((f) => f.id === only) : files;
    const shown = sorted(base.filter((f) => !query || f.fileName.toLowerCase().includes(query)));
    if (only && !base.length) {
      filesBox.replaceChildren(empty("There is no such file among yours."), el("p", {}, el("a", { href: "/app/files" }, "All files")));
      return;
    }
    if (!files.length) {
      filesBox.replaceChildren(empty(canUpload ? "No files yet. Upload one above." : "No files yet."));
      return;
    }
    if (!shown.length) {
      filesBox.replaceChildren(empty(`No file name contains “${search.value.trim()}”.`));
      return;
    }
    const problem = notice();
    filesBox.replaceChildren(problem, table([
      { label: "Name", value: (f) => el("a", { className: "file-name", href: `/app/files/${encodeURIComponent(f.id)}` }, f.fileName) },
      { label: "Size", value: (f) => formatBytes(f.sizeBytes) },
      { label: "Type", value: (f) => f.contentType },
      { label: "Updated", value: (f) => when(f.updatedUtc) },
      { label: "Actions", value: (f) => fileActions(f, problem) },
    ], shown, { caption: "Your files" }), ...(only ? [el("p", {}, el("a", { href: "/app/files" }, "All files"))] : []));
  }

  function fileActions(file, problem) {
    const cell = el("div", { className: "actions" });
    cell.append(el("button", { type: "button", className: "download", "aria-label": `Download ${file.fileName}`, onclick: () => download(`/v1/files/${encodeURIComponent(file.id)}/download`, file.fileName, problem) }, "Download"));
    const details = el("div", { className: "row-details" });
    if (canShare) {
      cell.append(el("button", { type: "button", className: "share", "aria-label": `Share ${file.fileName}`, "aria-expanded": "false", onclick: (event) => toggle(event.currentTarget, details, () => shareForm(file)) }, "Share"));
    }
    if (canDelete) {
      cell.append(el("button", {
        type: "button", className: "danger delete", "aria-label": `Delete ${file.fileName}`, onclick: async () => {
          if (!(await confirmAction(ctx, `Delete ${file.fileName}? Its bytes and every share of it are gone for good.`))) return;
          try {
            await ctx.api("DELETE", `/v1/files/${encodeURIComponent(file.id)}`);
            files = files.filter((f) => f.id !== file.id);
            say(ctx, `${file.fileName} deleted.`);
            drawFiles();
          } catch (error) {
            problem.show(error);
          }
        },
      }, "Delete"));
    }
    return el("div", {}, cell, details);
  }

  function toggle(button, box, build) {
    const open = button.getAttribute("aria-expanded") === "true";
    button.setAttribute("aria-expanded", String(!open));
    box.replaceChildren();
    if (!open) loading(box, build);
  }

  async function shareForm(file) {
    const [people, shares] = await Promise.all([colleagues(ctx), ctx.api("GET", `/v1/files/${encodeURIComponent(file.id)}/shares`)]);
    const who = memberSelect(people);
    const expires = el("input", { type: "datetime-local" });
    const problem = notice();
    const list = el("div");
    const drawShares = (items) => {
      list.replaceChildren(items.length ? table([
        { label: "Shared with", value: (s) => s.recipientName },
        { label: "Expires", value: (s) => when(s.expiresUtc) },
        { label: "Last opened", value: (s) => when(s.lastAccessUtc) },
        {
          label: "", value: (s) => el("button", {
            type: "button", className: "danger", "aria-label": `Revoke ${s.recipientName}'s share`, onclick: async () => {
              try {
                await ctx.api("DELETE", `/v1/files/${encodeURIComponent(file.id)}/shares/${encodeURIComponent(s.recipientUserId)}`);
                drawShares(items.filter((x) => x.shareId !== s.shareId));
              } catch (error) {
                problem.show(error);
              }
            },
          }, "Revoke"),
        },
      ], items, { caption: `Shares of ${file.fileName}` }) : empty("Not shared with anyone."));
    };
    drawShares(shares);
    const form = el("form", { className: "share-form" }, field("Member", who), field("Expires (optional)", expires, "Read-only; after this time the member can no longer open it."), problem, el("button", { type: "submit", className: "primary" }, "Share read-only"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.clear();
      await busy(form, async () => {
        try {
          await vaultCall(ctx, "POST", `/v1/files/${encodeURIComponent(file.id)}/shares`, { json: { recipientUserId: who.value, permission: "read", expiresUtc: rfc3339(expires.value) } });
          problem.show(`Shared with ${who.selectedOptions[0].textContent}.`, "success");
          drawShares(await ctx.api("GET", `/v1/files/${encodeURIComponent(file.id)}/shares`));
        } catch (error) {
          problem.show(error);
        }
      });
    });
    return [form, list];
  }

  function drawShared() {
    if (!isUnlocked()) {
      sharedBox.replaceChildren(empty("Unlock the vault to see files shared with you."));
      return;
    }
    if (!shared.length) {
      sharedBox.replaceChildren(empty("Nobody has shared a file with you."));
      return;
    }
    const problem = notice();
    sharedBox.replaceChildren(problem, table([
      { label: "Name", value: (f) => f.fileName },
      { label: "From", value: (f) => f.ownerName },
      { label: "Size", value: (f) => formatBytes(f.sizeBytes) },
      { label: "Expires", value: (f) => when(f.expiresUtc) },
      {
        label: "Actions", value: (f) => el("div", { className: "actions" },
          el("button", { type: "button", className: "download", "aria-label": `Download ${f.fileName}`, onclick: () => download(`/v1/files/shared/${encodeURIComponent(f.shareId)}/download`, f.fileName, problem) }, "Download"),
          el("button", {
            type: "button", "aria-label": `Remove ${f.fileName} from your list`, onclick: async () => {
              if (!(await confirmAction(ctx, `Give up ${f.fileName}? ${f.ownerName} would have to share it again.`))) return;
              try {
                await ctx.api("DELETE", `/v1/files/shared/${encodeURIComponent(f.shareId)}`);
                shared = shared.filter((x) => x.shareId !== f.shareId);
                drawShared();
              } catch (error) {
                problem.show(error);
              }
            },
          }, "Remove")),
      },
    ], shared, { caption: "Files shared with me" }));
  }

  async function refreshFiles() {
    await loading(filesBox, async () => {
      files = await vaultCall(ctx, "GET", "/v1/files");
      return null;
    });
    if (filesBox.querySelector(".notice")) return;
    drawFiles();
  }

  async function refreshShared() {
    await loading(sharedBox, async () => {
      shared = await vaultCall(ctx, "GET", "/v1/files/shared");
      return null;
    });
    if (sharedBox.querySelector(".notice")) return;
    drawShared();
  }

  // --- vault ----------------------------------------------------------------------------
  await loading(barSlot, async () => {
    status = await ctx.api("GET", "/v1/keys/status");
    return vaultBar(ctx, status, async (secret) => {
      files = await vaultCall(ctx, "GET", "/v1/files", { secret });
    });
  });
  const bar = barSlot.querySelector(".vault-bar");
  const onChange = (unlocked) => {
    bar?.redraw();
    if (unlocked) {
      drawFiles();
      if (!files.length) refreshFiles();
      refreshShared();
    } else {
      files = [];
      shared = [];
      drawFiles();
      drawShared();
    }
  };
  const unsubscribe = onVaultChange(onChange);
  if (isUnlocked()) {
    refreshFiles();
    refreshShared();
  } else {
    drawFiles();
    drawShared();
  }
  return () => {
    unsubscribe();
    // Leaving the page pauses uploads; the record lets them continue when it reopens.
    for (const controller of uploads) controller.abort();
  };
}
