// /transfers: the signed-in sender's transfers (GET /v1/transfers): status, files,
// downloads left, expiry, and revoking one (DELETE /v1/transfers/{id}, which deletes its
// bytes at once). End-to-end file names are not shown: only the link's key opens them.

import { Session } from "./js/api.js";
import { formatBytes, sentence } from "./forms.js";

const $ = (id) => document.getElementById(id);
const session = new Session();


function problem(text) {
  $("problem").textContent = text;
  $("problem").hidden = false;
  $("problem").focus();
}

function row(transfer) {
  const item = $("transfer-row").content.firstElementChild.cloneNode(true);
  item.dataset.id = transfer.id;
  item.dataset.status = transfer.status;
  item.querySelector(".file-name").textContent = transfer.name;
  item.querySelector(".transfer-status").textContent = transfer.status;
  const size = transfer.files.reduce((n, f) => n + f.size, 0);
  const files = transfer.e2e
    ? `${transfer.files.length} end-to-end encrypted ${transfer.files.length === 1 ? "file" : "files"}`
    : transfer.files.map((f) => f.name ?? "a file").join(", ");
  const left = transfer.remainingDownloads ?? "no limit";
  item.querySelector(".transfer-facts").textContent =
    `${files} (${formatBytes(size)}) · downloads left: ${left} · expires ${new Date(transfer.expiresAt).toLocaleString()}`;
  const revoke = item.querySelector(".transfer-revoke");
  revoke.setAttribute("aria-label", `Revoke ${transfer.name}`);
  revoke.hidden = !["pending", "ready"].includes(transfer.status);
  revoke.addEventListener("click", async () => {
    revoke.disabled = true;
    try {
      await session.call("DELETE", `/v1/transfers/${encodeURIComponent(transfer.id)}`);
      item.dataset.status = "revoked";
      item.querySelector(".transfer-status").textContent = "revoked";
      revoke.hidden = true;
    } catch (error) {
      problem(sentence(error.message));
      revoke.disabled = false;
    }
  });
  return item;
}

async function load() {
  if (!session.signedIn) {
    $("signed-out").hidden = false;
    return;
  }
  try {
    const transfers = await session.call("GET", "/v1/transfers?limit=200");
    $("transfers").replaceChildren(...transfers.map(row));
    $("empty").hidden = transfers.length > 0;
  } catch (error) {
    if (error.status === 401) $("signed-out").hidden = false;
    else problem(sentence(error.message));
  }
}

load();
