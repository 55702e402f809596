// /app/audit: the organization's audit log (GET /v1/audit) with filters kept in the
// address (so a filtered view is a link, survives a reload and the back button), older
// entries page by page through `Link: rel="next"`, one entry's details, verifying the
// hash chain (GET /v1/audit/verify) and exporting the filtered entries as JSON Lines or
// CSV. Read-only: the audit:read permission is all it needs.

import { badge, el, emptyState, errorState, formField, formatDate, loadingState, nextLink, pageHeader, section, fill } from "../dom.js";

/** Entries a page asks for at once (the API's largest page). */
const PAGE_SIZE = 200;
/** An export holds at most this many entries: it is built in memory as a Blob (audit rows
 *  are small, about 1 KiB each), so this bounds it to roughly 10 MiB. */
export const EXPORT_LIMIT = 10_000;
const FILTERS = ["action", "actor", "target", "since", "until"];

export async function render(root, ctx) {
  root.append(pageHeader("Audit log", `Everything that happened in ${ctx.org.name}, newest first. Each entry's hash covers the one before it.`));
  const query = new URLSearchParams(location.search);
  const filters = Object.fromEntries(FILTERS.map((f) => [f, query.get(f) ?? ""]));

  let members = [];
  try {
    members = await ctx.api("GET", `/v1/organizations/${ctx.org.id}/members`);
  } catch {
    // Names are a convenience: without them the actor's id shows.
  }
  const nameOf = (id) => {
    const m = members.find((x) => x.userId === id);
    return m ? `${m.displayName} (${m.email})` : id;
  };

  const verify = section("Chain");
  const list = section("Entries");
  root.append(filterForm(ctx, filters, members), verify, list);
  drawVerify(verify, ctx);

  const apiQuery = { ...apiFilters(filters), limit: 50 };
  const rows = el("tbody", {});
  const more = el("div", { class: "pager" });
  const detail = el("div", { id: "audit-detail" });
  let next = null;
  const append = (entries) => {
    for (const entry of entries) rows.append(row(entry, nameOf, detail));
  };
  const loadPage = async (path, query) => {
    const response = await ctx.apiRaw("GET", path, { query });
    const entries = await response.json();
    next = nextLink(response);
    append(entries);
    fill(more, 
      next
        ? el("button", {
            type: "button",
            id: "audit-older",
            text: "Show older entries",
            onclick: async (event) => {
              event.target.disabled = true;
              try {
                await loadPage(next);
              } catch (error) {
                ctx.toast(error.message, "error");
                event.target.disabled = false;
              }
            },
          })
        : el("p", { class: "hint", text: "No older entries." }),
    );
    return entries.length;
  };
  list.append(loadingState());
  let count;
  try {
    count = await loadPage("/v1/audit", apiQuery);
  } catch (error) {
    fill(list, list.querySelector("h2"), errorState(error));
    return;
  }
  const exports = el(
    "div",
    { class: "actions" },
    el("button", { type: "button", id: "export-jsonl", text: "Export JSON Lines", onclick: (e) => exportEntries(ctx, filters, "jsonl", e.target) }),
    el("button", { type: "button", id: "export-csv", text: "Export CSV", onclick: (e) => exportEntries(ctx, filters, "csv", e.target) }),
    el("span", { class: "hint", id: "export-status", role: "status" }),
  );
  const head = el("tr", {}, ["When", "Action", "Outcome", "Actor", "Target", ""].map((t) => el("th", { scope: "col", text: t })));
  fill(list, 
    list.querySelector("h2"),
    exports,
    el("p", { class: "hint", text: `Exports hold the filtered entries, at most ${EXPORT_LIMIT.toLocaleString()}.` }),
    count === 0 ? emptyState(hasFilters(filters) ? "No entries match these filters." : "No entries yet.") : el("div", { class: "table-wrap" }, el("table", { class: "data", id: "audit-table" }, el("thead", {}, head), rows)),
    more,
    detail,
  );
}

function hasFilters(filters) {
  return FILTERS.some((f) => filters[f]);
}

/** The filters as the API takes them: times as RFC 3339. */
function apiFilters(filters) {
  const out = {};
  for (const f of FILTERS) {
    if (!filters[f]) continue;
    if (f === "since" || f === "until") {
      const date = new Date(filters[f]);
      out[f] = Number.isNaN(date.getTime()) ? filters[f] : date.toISOString();
    } else out[f] = filters[f];
  }
  return out;
}

function filterForm(ctx, filters, members) {
  const action = formField({ label: "Action", name: "action", value: filters.action, hint: "Such as auth.login or member.removed.", attrs: { maxlength: 100 } });
  const actor = formField({
    label: "Actor",
    name: "actor",
    type: "select",
    value: filters.actor,
    options: [{ value: "", label: "Anyone" }, ...members.map((m) => ({ value: m.userId, label: `${m.displayName} (${m.email})` }))],
  });
  const target = formField({ label: "Target id", name: "target", value: filters.target, attrs: { maxlength: 100 } });
  // To the second (step 1): entries come seconds apart, and an incident's window is
  // often narrower than a minute. "Until" is exclusive, as in the API.
  const since = formField({ label: "From", name: "since", type: "datetime-local", value: filters.since, attrs: { step: 1 } });
  const until = formField({ label: "Until", name: "until", type: "datetime-local", value: filters.until, hint: "Your local time; up to, not including, this second.", attrs: { step: 1 } });
  const form = el(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter the audit log" },
    action, actor, target, since, until,
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary", text: "Apply filters" }), el("a", { href: "/app/audit", text: "Clear" })),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const field of [action, actor, target, since, until]) {
      const value = field.control.value.trim();
      if (value) params.set(field.control.name, value);
    }
    const text = params.toString();
    ctx.navigate(text ? `/app/audit?${text}` : "/app/audit");
  });
  return section("Filters", form);
}

function row(entry, nameOf, detail) {
  const target = entry.targetId ? `${entry.targetType ?? ""} ${entry.targetId}`.trim() : entry.targetType ?? "—";
  return el(
    "tr",
    { dataset: { id: entry.id, action: entry.action } },
    el("td", { text: formatDate(entry.createdAt) }),
    el("td", { class: "mono nowrap", text: entry.action }),
    el("td", {}, badge(entry.outcome, entry.outcome === "success" ? "active" : "disabled")),
    el("td", { text: entry.actorUserId ? nameOf(entry.actorUserId) : "the system" }),
    el("td", { class: "mono", text: target }),
    el("td", {}, el("button", { type: "button", text: "Details", "aria-label": `Details of ${entry.action} at ${formatDate(entry.createdAt)}`, onclick: () => showDetail(detail, entry, nameOf) })),
  );
}

function showDetail(box, entry, nameOf) {
  const facts = [
    ["Id", entry.id], ["When", `${formatDate(entry.createdAt)} (${entry.createdAt})`], ["Action", entry.action], ["Outcome", entry.outcome],
    ["Actor", entry.actorUserId ? nameOf(entry.actorUserId) : "the system"], ["Target type", entry.targetType], ["Target id", entry.targetId],
    ["Address", entry.ip], ["User agent", entry.userAgent], ["Request id", entry.requestId], ["Previous hash", entry.prevHash], ["Hash", entry.hash],
  ];
  const heading = el("h2", { id: "audit-detail-heading", tabindex: "-1", text: `Entry ${entry.action}` });
  fill(box, 
    el(
      "section",
      { class: "panel", "aria-labelledby": "audit-detail-heading" },
      heading,
      el("dl", { class: "facts" }, facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { class: "mono", text: v ?? "—" })])),
      el("h3", { text: "Details" }),
      el("pre", { class: "details", text: JSON.stringify(entry.details ?? {}, null, 2) }),
    ),
  );
  heading.focus();
}

async function drawVerify(box, ctx) {
  const result = el("div", { id: "verify-result", role: "status" });
  const button = el("button", {
    type: "button",
    id: "verify-chain",
    text: "Verify the chain",
    onclick: async () => {
      button.disabled = true;
      fill(result, loadingState("Checking every entry…"));
      try {
        const v = await ctx.api("GET", "/v1/audit/verify");
        fill(result, 
          el("p", { class: "notice", "data-kind": v.valid ? "success" : "error", text: v.valid ? `The chain is intact: ${v.entries} entries checked.` : `The chain is broken${v.brokenAt ? ` at entry ${v.brokenAt}` : ""}: ${v.problem ?? "an entry does not match its hash"}.` }),
          el(
            "dl",
            { class: "facts" },
            el("dt", { text: "Head hash" }), el("dd", { class: "mono", id: "verify-head", text: v.headHash }),
            el("dt", { text: "Anchor hash" }), el("dd", { class: "mono", text: v.anchorHash }),
            el("dt", { text: "Checked" }), el("dd", { text: formatDate(v.checkedAt) }),
          ),
        );
      } catch (error) {
        fill(result, errorState(error));
      } finally {
        button.disabled = false;
      }
    },
  });
  box.append(el("p", { class: "hint", text: "Recomputes every entry's hash from the first one on: an entry changed or removed in the database breaks the chain." }), button, result);
}

/** Every filtered entry, page by page, up to EXPORT_LIMIT; then a download. */
async function exportEntries(ctx, filters, format, button) {
  const status = document.getElementById("export-status");
  button.disabled = true;
  const entries = [];
  let truncated = false;
  try {
    let path = "/v1/audit";
    let query = { ...apiFilters(filters), limit: PAGE_SIZE };
    while (path) {
      const response = await ctx.apiRaw("GET", path, { query });
      entries.push(...(await response.json()));
      status.textContent = `Collected ${entries.length} entries…`;
      path = nextLink(response);
      query = undefined;
      if (entries.length >= EXPORT_LIMIT) {
        truncated = path !== null || entries.length > EXPORT_LIMIT;
        entries.length = Math.min(entries.length, EXPORT_LIMIT);
        break;
      }
    }
  } catch (error) {
    status.textContent = "";
    ctx.toast(error.message, "error");
    button.disabled = false;
    return;
  }
  const text = format === "csv" ? toCsv(entries) : entries.map((e) => JSON.stringify(e)).join("\n") + (entries.length ? "\n" : "");
  const blob = new Blob([text], { type: format === "csv" ? "text/csv" : "application/x-ndjson" });
  const url = URL.createObjectURL(blob);
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const link = el("a", { href: url, download: `audit-${ctx.org.slug ?? ctx.org.id}-${stamp}.${format === "csv" ? "csv" : "jsonl"}`, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  status.textContent = truncated
    ? `Exported the newest ${EXPORT_LIMIT.toLocaleString()} entries only: narrow the filters (a time range) to export the rest.`
    : `Exported ${entries.length} ${entries.length === 1 ? "entry" : "entries"}.`;
  button.disabled = false;
}

const CSV_COLUMNS = ["id", "createdAt", "action", "outcome", "actorUserId", "targetType", "targetId", "ip", "userAgent", "requestId", "details", "prevHash", "hash"];

/** RFC 4180 CSV. A cell that a spreadsheet would run as a formula (=, +, -, @ first)
 *  is prefixed with an apostrophe, so opening the export cannot run anything. */
export function toCsv(entries) {
  const cell = (value) => {
    let text = value === undefined || value === null ? "" : typeof value === "string" ? value : JSON.stringify(value);
    if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const lines = [CSV_COLUMNS.join(",")];
  for (const entry of entries) lines.push(CSV_COLUMNS.map((c) => cell(entry[c])).join(","));
  return `${lines.join("\r\n")}\r\n`;
}
