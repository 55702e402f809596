// /app/admin: the instance admin's console. Status (GET /admin/status: version, schema
// version, disk space, certificate expiry, webhook queue), every organization
// (GET/POST /admin/orgs; suspend and lift through /v1/organizations/{id}/suspend|unsuspend,
// which an instance admin may call for any organization) and the accounts of the one
// picked (?org=<id> in the address: GET/POST /admin/orgs/{id}/users; an account created
// without a password comes with its set-password link, shown once), each with a button
// that issues a password-reset link for it (POST /admin/orgs/{id}/users/{userId}/
// password-reset: the link is shown once with a copy button, and mailed too when the
// server has mail), and that organization's plan (GET/PUT /admin/orgs/{id}/plan, the
// choices from GET /admin/plans; docs/billing.md).

import { badge, copyButton, el, errorState, formField, formatBytes, formatDate, loadingState, pageHeader, section, simpleForm, table, fill } from "../dom.js";

/** A certificate closer than this to its expiry is shown as a warning. */
const CERT_WARN_DAYS = 14;

export async function render(root, ctx) {
  root.append(pageHeader("Instance admin", "Every organization on this server, their accounts, and the server's status."));
  const status = section("Status");
  const orgs = section("Organizations");
  const users = section("Accounts");
  status.id = "status";
  orgs.id = "organizations";
  users.id = "accounts";
  root.append(status, orgs, users);
  const picked = new URLSearchParams(location.search).get("org");
  await Promise.all([drawStatus(status, ctx), drawOrgs(orgs, ctx, picked, users)]);
}

function heading(box) {
  return box.querySelector("h2");
}

async function drawStatus(box, ctx) {
  fill(box, heading(box), loadingState());
  let s;
  try {
    s = await ctx.api("GET", "/admin/status");
  } catch (error) {
    fill(box, heading(box), errorState(error));
    return;
  }
  const cert = s.certificate;
  let certText = "TLS is off (a reverse proxy terminates it)";
  let certWarn = false;
  if (cert?.problem) {
    certText = cert.problem;
    certWarn = true;
  } else if (cert) {
    certText = `${formatDate(cert.notAfter)} (${cert.daysLeft < 0 ? `expired ${-cert.daysLeft} days ago` : `${cert.daysLeft} days left`}) · ${s.tls}`;
    certWarn = cert.daysLeft < CERT_WARN_DAYS;
  }
  const queue = s.webhookQueue;
  const facts = [
    ["Version", `${s.version} (API ${s.apiVersion})`, "status-version"],
    ["Database schema", s.schemaVersion === s.latestSchemaVersion ? `version ${s.schemaVersion}, current` : `version ${s.schemaVersion} of ${s.latestSchemaVersion}: run sealbox migrate`, "status-schema"],
    ["Disk free", s.disk ? `${formatBytes(s.disk.availableBytes)} of ${formatBytes(s.disk.totalBytes)}` : "unknown", "status-disk"],
    ["Certificate expiry", certText, "status-cert"],
    ["Webhook queue", `${queue.pending} pending, ${queue.due} due now${queue.oldestPendingAt ? `, oldest since ${formatDate(queue.oldestPendingAt)}` : ""}`, "status-queue"],
    ["Organizations", String(s.organizations), "status-orgs"],
    ["Accounts", String(s.users), "status-users"],
    ["Checked", formatDate(s.checkedAt), "status-checked"],
  ];
  fill(box, 
    heading(box),
    el("dl", { class: "facts" }, facts.flatMap(([k, v, id]) => [el("dt", { text: k }), el("dd", { id, dataset: { warn: String(id === "status-cert" && certWarn) }, text: v })])),
    el("button", { type: "button", id: "status-refresh", text: "Refresh", onclick: () => drawStatus(box, ctx) }),
  );
}

async function drawOrgs(box, ctx, picked, usersBox) {
  let orgs;
  try {
    orgs = await ctx.api("GET", "/admin/orgs");
  } catch (error) {
    fill(box, heading(box), errorState(error));
    return;
  }
  const redraw = () => drawOrgs(box, ctx, new URLSearchParams(location.search).get("org"), usersBox);
  const toggle = async (org) => {
    const suspend = org.status !== "suspended";
    if (suspend && !(await ctx.confirm(`Suspend ${org.name}? None of its ${org.memberCount} members can use its data until you lift it.`, { confirmLabel: "Suspend" }))) return;
    try {
      await ctx.api("POST", `/v1/organizations/${encodeURIComponent(org.id)}/${suspend ? "suspend" : "unsuspend"}`);
      ctx.toast(suspend ? `${org.name} is suspended.` : `${org.name} is active again.`, "success");
    } catch (error) {
      ctx.toast(error.message, "error");
    }
    await redraw();
  };
  const name = formField({ label: "Name", name: "name", required: true, attrs: { maxlength: 100 } });
  const slug = formField({ label: "Slug (optional)", name: "slug", hint: "Derived from the name when empty.", attrs: { maxlength: 63 } });
  const create = simpleForm({
    className: "inline",
    fields: [name, slug],
    submit: "Create organization",
    handler: async () => {
      const body = { name: name.control.value.trim() };
      if (slug.control.value.trim()) body.slug = slug.control.value.trim();
      const created = await ctx.api("POST", "/admin/orgs", { json: body });
      ctx.toast(`${created.name} created. Add its first account below.`, "success");
      ctx.navigate(`/app/admin?org=${encodeURIComponent(created.id)}#accounts`);
    },
  });
  const columns = [
    { label: "Name", value: (o) => el("a", { href: `/app/admin?org=${encodeURIComponent(o.id)}#accounts`, "aria-current": o.id === picked ? "true" : undefined, text: o.name }) },
    { label: "Slug", value: (o) => o.slug, class: "mono" },
    { label: "Status", value: (o) => el("span", {}, badge(o.status), o.suspendedBy ? ` by ${o.suspendedBy === "instanceAdmin" ? "an instance admin" : "its owners"}` : "") },
    { label: "Members", value: (o) => String(o.memberCount), class: "num" },
    { label: "Created", value: (o) => formatDate(o.createdAt) },
    {
      label: "Actions",
      value: (o) => el("button", { type: "button", class: o.status === "suspended" ? "" : "danger", text: o.status === "suspended" ? "Lift suspension" : "Suspend", "aria-label": `${o.status === "suspended" ? "Lift the suspension of" : "Suspend"} ${o.name}`, onclick: () => toggle(o) }),
    },
  ];
  fill(box, heading(box), create, table(columns, orgs, { empty: "No organizations.", rowKey: (o) => o.id }));
  const org = orgs.find((o) => o.id === picked);
  await drawUsers(usersBox, ctx, org);
}

async function drawUsers(box, ctx, org) {
  if (!org) {
    fill(box, heading(box), el("p", { class: "hint", text: "Pick an organization above to see and create its accounts." }));
    return;
  }
  fill(box, heading(box), loadingState());
  let users;
  try {
    users = await ctx.api("GET", `/admin/orgs/${encodeURIComponent(org.id)}/users`);
  } catch (error) {
    fill(box, heading(box), errorState(error));
    return;
  }
  // The organizations table counts active members; keep its row true after an account
  // is created here without redrawing (and losing) the one-time link below.
  org.memberCount = users.filter((u) => u.status === "active").length;
  const countCell = document.querySelector(`#organizations tr[data-id="${CSS.escape(org.id)}"] td[data-label="Members"]`);
  if (countCell) countCell.textContent = String(org.memberCount);
  const result = el("div", { id: "account-result" });
  const email = formField({ label: "Email address", name: "email", type: "email", required: true, attrs: { maxlength: 254, autocomplete: "off" } });
  const name = formField({ label: "Display name", name: "displayName", required: true, attrs: { maxlength: 100 } });
  const role = formField({ label: "Role", name: "role", type: "select", value: "member", options: ["owner", "admin", "member", "auditor"] });
  const password = formField({ label: "Password (optional)", name: "password", type: "password", hint: "Leave it empty to get a single-use link (valid 72 hours) the person uses to choose one.", attrs: { autocomplete: "new-password", maxlength: 1024 } });
  const form = simpleForm({
    fields: [email, name, role, password],
    submit: "Create account",
    handler: async () => {
      const body = { email: email.control.value.trim(), displayName: name.control.value.trim(), role: role.control.value };
      if (password.control.value) body.password = password.control.value;
      const created = await ctx.api("POST", `/admin/orgs/${encodeURIComponent(org.id)}/users`, { json: body });
      password.control.value = "";
      await drawUsers(box, ctx, org);
      const out = document.getElementById("account-result");
      fill(out, 
        created.setPasswordUrl
          ? el(
              "div",
              { class: "notice show-once", "data-kind": "success", role: "status" },
              el("p", { text: `Account ${created.user.email} created. Give them this link to choose a password; it is shown once and works once.` }),
              el("input", { type: "text", readOnly: true, value: created.setPasswordUrl, class: "secret-value", id: "set-password-link", "aria-label": "Set-password link" }),
              copyButton(created.setPasswordUrl, "Copy link"),
            )
          : el("p", { class: "notice", "data-kind": "success", role: "status", text: `Account ${created.user.email} created with the password you chose.` }),
      );
    },
  });
  const resetBox = el("div", { id: "reset-result" });
  const issueReset = async (user, button) => {
    const out = resetBox;
    button.disabled = true;
    try {
      const issued = await ctx.api("POST", `/admin/orgs/${encodeURIComponent(org.id)}/users/${encodeURIComponent(user.userId)}/password-reset`);
      fill(out,
        el(
          "div",
          { class: "notice show-once", "data-kind": "success", role: "status" },
          el("p", { text: `Password reset link for ${user.email}, valid until ${formatDate(issued.expiresAt)}. It is shown once and works once; using it signs them out everywhere. Their current password works until then.` }),
          el("p", { text: issued.mailed ? `It was also mailed to ${user.email}.` : "It was not mailed (mail is off, or the mail server refused it): hand it over yourself." }),
          el("input", { type: "text", readOnly: true, value: issued.resetUrl, class: "secret-value", id: "reset-link", "aria-label": `Password reset link for ${user.email}` }),
          copyButton(issued.resetUrl, "Copy link"),
        ),
      );
    } catch (error) {
      fill(out, errorState(error));
    } finally {
      button.disabled = false;
    }
    out.scrollIntoView({ block: "nearest" });
  };
  const columns = [
    { label: "Name", value: (u) => u.displayName },
    { label: "Email", value: (u) => u.email },
    { label: "Role", value: (u) => u.role },
    { label: "Status", value: (u) => badge(u.status) },
    { label: "Joined", value: (u) => formatDate(u.joinedAt) },
    {
      label: "Actions",
      value: (u) => el("button", { type: "button", class: "reset-link", text: "Reset link", "aria-label": `Issue a password reset link for ${u.email}`, onclick: (event) => issueReset(u, event.currentTarget) }),
    },
  ];
  const plan = el("div", { id: "org-plan" }, loadingState());
  fill(box, 
    el("h2", { id: heading(box).id, text: `Accounts of ${org.name}` }),
    el("h3", { text: "Plan" }),
    plan,
    el("h3", { text: "Members" }),
    table(columns, users, { empty: "No accounts yet.", rowKey: (u) => u.userId }),
    resetBox,
    el("h3", { text: "New account" }),
    form,
    result,
  );
  await drawPlan(plan, ctx, org);
}

/** The picked organization's plan and, when the instance has plans, the form that
 *  assigns one (optionally until a date, after which the default applies again). */
async function drawPlan(box, ctx, org) {
  const path = `/admin/orgs/${encodeURIComponent(org.id)}/plan`;
  let current, plans;
  try {
    [current, plans] = await Promise.all([ctx.api("GET", path), ctx.api("GET", "/admin/plans")]);
  } catch (error) {
    fill(box, errorState(error));
    return;
  }
  if (plans.length === 0) {
    fill(box, el("p", { class: "hint", id: "plan-now", text: "This instance has no plans ([[plans]] in the configuration): nothing is limited." }));
    return;
  }
  const via = { admin_api: "an instance admin", cli: "sealbox admin set-plan", stripe: "Stripe", paystack: "Paystack", flutterwave: "Flutterwave" };
  const now =
    current.status === "active"
      ? `${current.planName}, assigned by ${via[current.setVia] ?? current.setVia} ${formatDate(current.setAt)}${current.endsAt ? `, until ${formatDate(current.endsAt)}` : ""}.`
      : `${current.planName}, the default plan${current.assignedPlan ? ` (the assigned ${current.assignedPlan} has ended or is no longer configured)` : ""}.`;
  const choice = formField({ label: "Plan", name: "plan", type: "select", value: current.plan, options: plans.map((p) => ({ value: p.id, label: p.default ? `${p.name} (default)` : p.name })) });
  const until = formField({ label: "Until (optional)", name: "endsAt", type: "datetime-local", hint: "After it the default plan applies again. Empty: until the next change." });
  const form = simpleForm({
    className: "inline",
    fields: [choice, until],
    submit: "Set plan",
    handler: async () => {
      const body = { plan: choice.control.value };
      if (until.control.value) body.endsAt = new Date(until.control.value).toISOString();
      const changed = await ctx.api("PUT", path, { json: body });
      ctx.toast(`${org.name} is on ${changed.plan} (was ${changed.previousPlan}).`, "success");
      await drawPlan(box, ctx, org);
    },
  });
  form.id = "plan-form";
  fill(box, el("p", { id: "plan-now", text: now }), form);
}
