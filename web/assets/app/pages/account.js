// /app/account: the signed-in person's profile (name), password, default organization,
// linked identity providers (link one: the provider's page, then back here with `?sso=1`;
// unlink), sessions (the current one marked, revoke the others) and notifications in the
// current organization (mark read; the header's bell counts the unread ones).

import { checkNewPassword, clear } from "../../forms.js";
import {
  badge, el, emptyState, errorState, formField, formatDate, loadingState, nextLink, pageHeader, section, simpleForm, table, fill } from "../dom.js";

export async function render(root, ctx) {
  root.append(pageHeader("Your account", `${ctx.me.displayName} · ${ctx.me.email}`));
  const [profile, password, defaults, providers, sessions, notifications] = [
    section("Profile"), section("Password"), section("Default organization"), section("Sign-in providers"), section("Sessions"), section("Notifications"),
  ];
  notifications.id = "notifications";
  providers.id = "identities";
  root.append(profile, password, defaults, providers, sessions, notifications);
  drawProfile(profile, ctx);
  drawPassword(password, ctx);
  drawDefaultOrg(defaults, ctx);
  await finishLink(ctx);
  await Promise.all([drawIdentities(providers, ctx), drawSessions(sessions, ctx), drawNotifications(notifications, ctx)]);
}

/** Back from a provider after "Link": collects the outcome the callback left. */
async function finishLink(ctx) {
  const url = new URL(location.href);
  if (!url.searchParams.has("sso")) return;
  url.searchParams.delete("sso");
  history.replaceState(null, "", url.pathname + url.search);
  try {
    const done = await ctx.session.completeSso();
    ctx.toast(`${done.provider ?? "The provider"} is linked: you can sign in with it.`, "success");
  } catch (error) {
    ctx.toast(`The link was refused: ${error.message}`, "error");
  }
}

async function drawIdentities(box, ctx) {
  const heading = box.querySelector("h2");
  fill(box, heading, loadingState());
  let linked;
  let providers;
  try {
    [linked, providers] = await Promise.all([ctx.api("GET", "/v1/me/identities"), ctx.api("GET", "/v1/auth/providers")]);
  } catch (error) {
    fill(box, heading, errorState(error));
    return;
  }
  const unlink = async (identity) => {
    const name = identity.providerName ?? identity.provider;
    if (!(await ctx.confirm(`Unlink ${name}? It will no longer sign you in.`, { confirmLabel: "Unlink" }))) return;
    try {
      await ctx.api("DELETE", `/v1/me/identities/${encodeURIComponent(identity.id)}`);
      ctx.toast(`${name} unlinked.`, "success");
    } catch (error) {
      ctx.toast(error.message, "error");
    }
    await drawIdentities(box, ctx);
  };
  const link = async (provider) => {
    try {
      // The answer sets the HttpOnly cookie that binds the link to this browser.
      const start = await ctx.api("POST", `/v1/auth/oauth/${encodeURIComponent(provider.id)}/link`, { credentials: "same-origin" });
      location.assign(start.authorizationUrl);
    } catch (error) {
      ctx.toast(error.message, "error");
    }
  };
  const rows = table(
    [
      { label: "Provider", value: (i) => i.providerName ?? i.provider },
      { label: "Email address", value: (i) => i.email || "—" },
      { label: "Linked", value: (i) => formatDate(i.linkedAt) },
      { label: "Last sign-in", value: (i) => (i.lastLoginAt ? formatDate(i.lastLoginAt) : "—") },
      {
        label: "Actions",
        value: (i) => el("button", { type: "button", class: "danger", text: "Unlink", "aria-label": `Unlink ${i.providerName ?? i.provider}`, onclick: () => unlink(i) }),
      },
    ],
    linked.identities,
    { empty: "No identity provider is linked to your account.", rowKey: (i) => i.id },
  );
  rows.id = "identities-list";
  const buttons = providers.providers.map((p) =>
    el("button", { type: "button", "data-link-provider": p.id, text: `Link ${p.displayName}`, onclick: () => link(p) }),
  );
  fill(box, heading, rows, buttons.length ? el("div", { class: "actions" }, ...buttons) : null);
}

function drawProfile(box, ctx) {
  const name = formField({ label: "Display name", name: "displayName", value: ctx.me.displayName, required: true, attrs: { maxlength: 100, autocomplete: "name" } });
  const email = formField({ label: "Email address", name: "email", value: ctx.me.email, attrs: { readonly: true }, hint: "Your sign-in name; an admin can change it." });
  box.append(
    simpleForm({
      fields: [name, email],
      submit: "Save profile",
      handler: async () => {
        await ctx.api("PATCH", "/v1/users/me", { json: { displayName: name.control.value.trim() } });
        await ctx.reload();
        ctx.toast("Profile saved.", "success");
      },
    }),
  );
}

function drawPassword(box, ctx) {
  const current = formField({ label: "Current password", name: "currentPassword", type: "password", attrs: { autocomplete: "current-password", maxlength: 1024 } });
  const next = formField({ label: "New password", name: "password", type: "password", hint: "At least 10 characters; common passwords are refused.", attrs: { autocomplete: "new-password", maxlength: 1024 } });
  const repeat = formField({ label: "New password again", name: "passwordRepeat", type: "password", attrs: { autocomplete: "new-password", maxlength: 1024 } });
  const form = simpleForm({
    fields: [current, next, repeat],
    submit: "Change password",
    handler: async (f) => {
      if (!checkNewPassword(f.problem, f, next.control, repeat.control)) return;
      await ctx.api("PATCH", "/v1/users/me", { json: { currentPassword: current.control.value, password: next.control.value } });
      for (const field of [current, next, repeat]) field.control.value = "";
      clear(f.problem, f);
      ctx.toast("Password changed. Your other sessions were signed out.", "success");
      const list = document.getElementById("sessions-list");
      if (list) await drawSessions(list.closest("section"), ctx);
    },
  });
  box.append(form);
}

function drawDefaultOrg(box, ctx) {
  const orgs = ctx.orgs;
  if (orgs.length === 0) {
    box.append(emptyState("You are not an active member of any organization."));
    return;
  }
  const select = formField({
    label: "Open this organization after signing in",
    name: "defaultOrganizationId",
    type: "select",
    value: ctx.me.defaultOrganizationId ?? "",
    options: orgs.map((o) => ({ value: o.id, label: o.name })),
  });
  box.append(
    simpleForm({
      fields: [select],
      submit: "Save default",
      handler: async () => {
        await ctx.api("PATCH", "/v1/users/me", { json: { defaultOrganizationId: select.control.value } });
        await ctx.reload();
        ctx.toast("Default organization saved.", "success");
      },
    }),
  );
}

async function drawSessions(box, ctx) {
  const heading = box.querySelector("h2");
  fill(box, heading, loadingState());
  let list;
  try {
    list = await ctx.api("GET", "/v1/sessions");
  } catch (error) {
    fill(box, heading, errorState(error));
    return;
  }
  const revoke = async (session) => {
    if (!(await ctx.confirm("Sign this session out? The device it runs on will have to sign in again.", { confirmLabel: "Sign out" }))) return;
    try {
      await ctx.api("DELETE", `/v1/sessions/${encodeURIComponent(session.id)}`);
      ctx.toast("Session signed out.", "success");
    } catch (error) {
      ctx.toast(error.message, "error");
    }
    await drawSessions(box, ctx);
  };
  const others = list.filter((s) => !s.current);
  const revokeOthers = async () => {
    if (!(await ctx.confirm(`Sign out ${others.length} other ${others.length === 1 ? "session" : "sessions"}?`, { confirmLabel: "Sign out others" }))) return;
    let failed = null;
    for (const session of others) {
      try {
        await ctx.api("DELETE", `/v1/sessions/${encodeURIComponent(session.id)}`);
      } catch (error) {
        failed = error;
      }
    }
    ctx.toast(failed ? failed.message : "Other sessions signed out.", failed ? "error" : "success");
    await drawSessions(box, ctx);
  };
  const rows = table(
    [
      { label: "Device", value: (s) => el("span", {}, s.userAgent ?? "unknown", s.current ? [" ", badge("this session", "active")] : null) },
      { label: "Address", value: (s) => s.ip ?? "—", class: "mono nowrap" },
      { label: "Signed in", value: (s) => formatDate(s.createdAt) },
      { label: "Last seen", value: (s) => formatDate(s.lastSeenAt) },
      {
        label: "Actions",
        value: (s) => (s.current ? el("span", { class: "hint", text: "Sign out from the menu" }) : el("button", { type: "button", class: "danger", text: "Sign out", "aria-label": `Sign out the session from ${s.ip ?? "an unknown address"}`, onclick: () => revoke(s) })),
      },
    ],
    list,
    { empty: "No active sessions.", rowKey: (s) => s.id },
  );
  rows.id = "sessions-list";
  fill(box, heading, rows, others.length ? el("div", { class: "actions" }, el("button", { type: "button", class: "danger", id: "revoke-other-sessions", text: "Sign out all other sessions", onclick: revokeOthers })) : null);
}

async function drawNotifications(box, ctx) {
  const heading = box.querySelector("h2");
  if (!ctx.org) {
    fill(box, heading, emptyState("Notifications belong to an organization; you have none."));
    return;
  }
  fill(box, heading, el("p", { class: "hint", text: `In ${ctx.org.name}, newest first.` }), loadingState());
  const items = el("ul", { class: "files", id: "notification-list" });
  const more = el("div", { class: "pager" });
  let next = "/v1/notifications?limit=50";
  const load = async () => {
    const response = await ctx.apiRaw("GET", next);
    const page = await response.json();
    next = nextLink(response);
    for (const n of page) items.append(item(n));
    fill(more, next ? el("button", { type: "button", text: "Show older", onclick: () => load().catch((e) => ctx.toast(e.message, "error")) }) : null);
    return page.length;
  };
  const markRead = async (ids, all) => {
    try {
      await ctx.api("POST", "/v1/notifications/read", { json: all ? { all: true } : { ids } });
      await ctx.refreshBell();
      await drawNotifications(box, ctx);
    } catch (error) {
      ctx.toast(error.message, "error");
    }
  };
  const item = (n) =>
    el(
      "li",
      { class: "file", dataset: { id: n.id, read: String(n.read) } },
      el("div", { class: "file-head" }, el("span", { class: "file-name", text: n.title }), n.read ? badge("read") : badge("unread", "active")),
      el("p", { class: "hint", text: n.body }),
      el("p", { class: "hint", text: formatDate(n.createdAt) }),
      n.read ? null : el("button", { type: "button", text: "Mark read", "aria-label": `Mark “${n.title}” read`, onclick: () => markRead([n.id], false) }),
    );
  let count;
  try {
    count = await load();
  } catch (error) {
    fill(box, heading, errorState(error));
    return;
  }
  fill(box, 
    heading,
    count === 0 ? emptyState("No notifications.") : el("div", { class: "actions" }, el("button", { type: "button", id: "mark-all-read", text: "Mark all read", onclick: () => markRead(null, true) })),
    items,
    more,
  );
}
