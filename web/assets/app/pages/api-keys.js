// /app/api-keys: the caller's API keys in the current organization (src/http/api_keys.rs),
// and for owners and admins their members' keys.
//
// A new or rotated key's value is in the one answer that made it: the page shows it once
// (showOnce) and keeps it nowhere, so a reload or another visit shows only its prefix.
// The scope picker lists the permissions of GET /v1/permissions that the caller's role
// grants (a key never gets more than its owner has; the server refuses more anyway), with
// the API's defaults ticked.

import {
  busy, colleagues, confirmAction, el, empty, field, loading, notice, rfc3339, say, when,
} from "./common-vault.js";
import { showOnce, table } from "../dom.js";

/** The API's default scopes (CreateApiKeyRequest.scopes). */
const DEFAULT_SCOPES = ["transfers:write", "files:read"];
const enc = encodeURIComponent;

export async function render(root, ctx) {
  const canWrite = ctx.can("api_keys:write");
  const canManageMembers = canWrite && ctx.can("members:write");
  root.append(el("h1", {}, "API keys"), el("p", { className: "lead" }, `Keys let scripts and tools act as you in ${ctx.org?.name ?? "this organization"}, with at most the scopes you pick and never more than your role allows. Send one as "Authorization: Bearer sbx_…" or "X-Api-Key".`));
  const onceSlot = el("div", { id: "key-once", "aria-live": "polite" });
  const createSection = el("section", { className: "panel", "aria-labelledby": "key-create-h" });
  const listSection = el("section", { className: "panel", "aria-labelledby": "key-list-h" });
  const membersSection = el("section", { className: "panel", "aria-labelledby": "key-members-h" });
  root.append(onceSlot, createSection, listSection);
  if (canManageMembers) root.append(membersSection);

  const listBox = el("div", { id: "keys-list" });
  listSection.append(el("h2", { id: "key-list-h" }, "Your keys"), listBox);

  function reveal(title, key) {
    onceSlot.replaceChildren(showOnce(title, key, "Copy the key now: sealbox stores only its hash, so it is shown this once and never again."));
  }

  // --- create -------------------------------------------------------------------------
  createSection.append(el("h2", { id: "key-create-h" }, "New key"));
  if (!canWrite) {
    createSection.append(el("p", { className: "hint" }, "Your role cannot create API keys (it lacks api_keys:write)."));
  } else {
    const permissions = await ctx.api("GET", "/v1/permissions");
    const name = el("input", { type: "text", id: "key-name", required: true, maxlength: "100", autocomplete: "off" });
    const scopeBoxes = [];
    const scopeList = el("fieldset", { className: "scopes", id: "key-scopes" }, el("legend", {}, "Scopes"));
    const offered = permissions.filter((p) => ctx.can(p.key));
    if (ctx.isInstanceAdmin) offered.push({ key: "admin", description: "Instance-admin power (the /admin routes) for this key" });
    for (const p of offered) {
      const box = el("input", { type: "checkbox", value: p.key, id: `scope-${p.key.replace(/[^a-z_]/g, "-")}`, checked: DEFAULT_SCOPES.includes(p.key) });
      scopeBoxes.push(box);
      scopeList.append(el("div", { className: "field check" }, box, el("label", { for: box.id }, el("code", {}, p.key), ` ${p.description}`)));
    }
    const notOffered = permissions.length - permissions.filter((p) => ctx.can(p.key)).length;
    if (notOffered) scopeList.append(el("p", { className: "hint" }, `${notOffered} more scopes exist that your role does not grant, so a key of yours cannot have them.`));
    const ips = el("textarea", { id: "key-ips", rows: "2", spellcheck: "false", placeholder: "203.0.113.0/24" });
    const maxUses = el("input", { type: "number", id: "key-max-uses", min: "1", step: "1", inputmode: "numeric" });
    const expires = el("input", { type: "datetime-local", id: "key-expires" });
    const problem = notice();
    const form = el("form", { id: "key-form" }, field("Name", name), scopeList,
      field("IP allowlist (optional)", ips, "One address or CIDR per line; empty: any address."),
      field("Maximum uses (optional)", maxUses), field("Expires (optional)", expires), problem,
      el("button", { type: "submit", className: "primary" }, "Create key"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.clear();
      const body = {
        name: name.value.trim(),
        scopes: scopeBoxes.filter((b) => b.checked).map((b) => b.value),
      };
      const allow = ips.value.split(/[\s,]+/).filter(Boolean);
      if (allow.length) body.ipAllowlist = allow;
      if (maxUses.value) body.maxUses = Number(maxUses.value);
      if (expires.value) body.expiresAt = rfc3339(expires.value);
      if (!body.scopes.length) {
        problem.show("Pick at least one scope.");
        return;
      }
      await busy(form, async () => {
        try {
          const created = await ctx.api("POST", "/v1/api-keys", { json: body });
          reveal(`Your new key “${created.name}”`, created.key);
          form.reset();
          for (const b of scopeBoxes) b.checked = DEFAULT_SCOPES.includes(b.value);
          loadKeys(listBox, null);
        } catch (error) {
          problem.show(error);
        }
      });
    });
    createSection.append(form);
  }

  // --- lists --------------------------------------------------------------------------
  function loadKeys(box, userId) {
    return loading(box, async () => {
      const keys = await ctx.api("GET", userId ? `/v1/api-keys?userId=${enc(userId)}` : "/v1/api-keys");
      if (!keys.length) return empty(userId ? "This member has no API keys here." : "No API keys yet.");
      const problem = notice();
      return [problem, table([
        { label: "Name", value: (k) => k.name },
        { label: "Prefix", value: (k) => el("code", { className: "key-prefix" }, `${k.keyPrefix}…`) },
        { label: "Scopes", value: (k) => k.scopes.join(", ") },
        { label: "Limits", value: (k) => [k.ipAllowlist.length ? `from ${k.ipAllowlist.join(", ")}` : "any address", k.maxUses ? `${k.useCount} of ${k.maxUses} uses` : `${k.useCount} uses`].join(" · ") },
        { label: "Expires", value: (k) => (k.rotatedTo ? `${when(k.expiresAt)} (rotated)` : when(k.expiresAt)) },
        { label: "Last use", value: (k) => (k.lastUsedAt ? `${when(k.lastUsedAt)}${k.lastUsedIp ? ` from ${k.lastUsedIp}` : ""}` : "never") },
        { label: "Actions", value: (k) => keyActions(k, box, userId, problem) },
      ], keys, { caption: userId ? "The member's keys" : "Your keys" })];
    });
  }

  function keyActions(key, box, userId, problem) {
    if (!canWrite) return el("span", { className: "hint" }, "read only");
    const cell = el("div", { className: "actions" });
    if (!userId && !key.rotatedTo) {
      const grace = el("input", { type: "number", min: "0", max: "168", value: "24", className: "grace", "aria-label": `Hours the old value of ${key.name} keeps working` });
      cell.append(el("label", { className: "inline" }, "Grace (h) ", grace), el("button", {
        type: "button", "aria-label": `Rotate ${key.name}`, onclick: async () => {
          try {
            const rotated = await ctx.api("POST", `/v1/api-keys/${enc(key.id)}/rotate`, { json: { gracePeriodHours: Number(grace.value || 24) } });
            reveal(`The new value of “${rotated.name}”`, rotated.key);
            loadKeys(box, userId);
          } catch (error) {
            problem.show(error);
          }
        },
      }, "Rotate"));
    }
    cell.append(el("button", {
      type: "button", className: "danger", "aria-label": `Revoke ${key.name}`, onclick: async () => {
        if (!(await confirmAction(ctx, `Revoke the key ${key.name}? Anything using it stops working at its next request.`))) return;
        try {
          await ctx.api("DELETE", `/v1/api-keys/${enc(key.id)}`);
          say(ctx, `${key.name} revoked.`);
          loadKeys(box, userId);
        } catch (error) {
          problem.show(error);
        }
      },
    }, "Revoke"));
    return cell;
  }

  loadKeys(listBox, null);

  if (canManageMembers) {
    const memberBox = el("div", { id: "member-keys" });
    membersSection.append(el("h2", { id: "key-members-h" }, "Members' keys"), el("p", { className: "hint" }, "As an owner or admin you see and revoke the keys of members whose role grants no more than yours."));
    const pickSlot = el("div");
    membersSection.append(pickSlot, memberBox);
    loading(pickSlot, async () => {
      const people = await colleagues(ctx);
      if (!people.length) return empty("No other members yet.");
      const select = el("select", { id: "member-pick" }, el("option", { value: "" }, "Choose a member…"), ...people.map((p) => el("option", { value: p.id }, `${p.displayName} <${p.email}>`)));
      select.addEventListener("change", () => {
        if (select.value) loadKeys(memberBox, select.value);
        else memberBox.replaceChildren();
      });
      return field("Member", select);
    });
  }
}
