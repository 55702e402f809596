// /app/organization: the current organization's settings and suspension state, members
// (role, status, remove), invites (create, copy the link when mail is off, withdraw),
// roles (built-in read-only; custom ones with permission checkboxes from
// GET /v1/permissions), teams and departments. What the role may not do is not offered:
// the controls are absent and a line says which permission they need. The server checks
// every call again.

import {
  badge, copyButton, el, emptyState, errorState, formField, formatDate, loadingState, pageHeader, section, simpleForm, table, fill } from "../dom.js";

const BUILTIN = ["owner", "admin", "member", "auditor"];

export async function render(root, ctx) {
  const org = ctx.org;
  root.append(pageHeader(org.name, `Your role here: ${org.role}.`));
  if (org.status === "suspended") {
    root.append(await suspendedPanel(ctx));
    return;
  }
  const parts = {
    settings: section("Settings"),
    members: section("Members"),
    invites: section("Invites"),
    roles: section("Roles"),
    teams: section("Teams"),
    departments: section("Departments"),
  };
  for (const [key, part] of Object.entries(parts)) {
    part.id = key;
    part.append(loadingState());
    root.append(part);
  }
  // Shared by several sections: the roles to pick from and the members to put in groups.
  const shared = { roles: [], members: [] };
  try {
    [shared.roles, shared.members] = await Promise.all([ctx.api("GET", "/v1/roles"), ctx.api("GET", `/v1/organizations/${org.id}/members`)]);
  } catch (error) {
    fill(root, pageHeader(org.name), errorState(error));
    return;
  }
  const redraw = {};
  redraw.settings = () => guard(parts.settings, () => drawSettings(parts.settings, ctx));
  redraw.members = async () => {
    shared.members = await ctx.api("GET", `/v1/organizations/${org.id}/members`);
    drawMembers(parts.members, ctx, shared, redraw);
    // The groups' member pickers list the members too.
    await Promise.all([redraw.teams(), redraw.departments()]);
  };
  redraw.invites = () => guard(parts.invites, () => drawInvites(parts.invites, ctx, shared, redraw));
  redraw.roles = async () => {
    shared.roles = await ctx.api("GET", "/v1/roles");
    await drawRoles(parts.roles, ctx, shared, redraw);
  };
  redraw.teams = () => guard(parts.teams, () => drawGroups(parts.teams, ctx, shared, "/v1/teams", "team"));
  redraw.departments = () => guard(parts.departments, () => drawGroups(parts.departments, ctx, shared, "/v1/departments", "department"));
  drawMembers(parts.members, ctx, shared, redraw);
  await Promise.all([redraw.settings(), redraw.invites(), guard(parts.roles, () => drawRoles(parts.roles, ctx, shared, redraw)), redraw.teams(), redraw.departments()]);
}

/** Runs a section's drawing; an error replaces the section's body with the message. */
async function guard(box, draw) {
  try {
    await draw();
  } catch (error) {
    fill(box, box.querySelector("h2"), errorState(error));
  }
}

function heading(box) {
  return box.querySelector("h2");
}

/** The line shown where a control would be, naming the permission it needs. */
function needs(permission, what) {
  return el("p", { class: "hint needs", text: `${what} needs the ${permission} permission, which your role does not have.` });
}

function roleOptions(roles) {
  return roles.map((r) => ({ value: r.id, label: r.builtIn ? r.name : `${r.name} (custom)` }));
}

function roleName(roles, id) {
  return roles.find((r) => r.id === id)?.name ?? id;
}

async function act(ctx, work, success) {
  try {
    await work();
    if (success) ctx.toast(success, "success");
    return true;
  } catch (error) {
    ctx.toast(error.message, "error");
    return false;
  }
}

/** What a suspended organization's page shows: who suspended it and, to whom may,
 *  the button that lifts it. Its data is out of reach (every call in it answers 403
 *  ORG_SUSPENDED); the list of one's organizations still answers, with `suspendedBy`. */
async function suspendedPanel(ctx) {
  const box = section("Suspended", el("p", { text: "This organization is suspended: no one can use its data until the suspension is lifted." }));
  let by = null;
  try {
    const mine = await ctx.api("GET", "/v1/organizations");
    by = mine.find((o) => o.id === ctx.org.id)?.suspendedBy ?? null;
  } catch {
    // Who suspended it is a hint; the server decides whether lifting is allowed.
  }
  if (by) box.append(el("p", { id: "suspended-by", text: by === "instanceAdmin" ? "An instance admin suspended it." : "Its owners suspended it." }));
  // Owners lift their own suspension; one an instance admin made, only an instance admin.
  const owner = ctx.org.role === "owner";
  if (ctx.isInstanceAdmin || (owner && by !== "instanceAdmin")) {
    box.append(
      el("button", {
        type: "button",
        class: "primary",
        id: "unsuspend",
        text: "Lift the suspension",
        onclick: async () => {
          if (await act(ctx, () => ctx.api("POST", `/v1/organizations/${ctx.org.id}/unsuspend`), "The suspension is lifted.")) await ctx.reload();
        },
      }),
    );
  } else box.append(el("p", { class: "hint", text: owner ? "Only an instance admin can lift it." : "An owner or an instance admin can lift it." }));
  return box;
}

async function drawSettings(box, ctx) {
  const org = await ctx.api("GET", `/v1/organizations/${ctx.org.id}`);
  const facts = el(
    "dl",
    { class: "facts" },
    el("dt", { text: "Name" }), el("dd", { text: org.name }),
    el("dt", { text: "Slug" }), el("dd", { class: "mono", text: org.slug }),
    el("dt", { text: "Status" }), el("dd", {}, badge(org.status)),
    el("dt", { text: "Created" }), el("dd", { text: formatDate(org.createdAt) }),
  );
  const children = [heading(box), facts];
  if (ctx.can("org:write")) {
    const name = formField({ label: "Name", name: "name", value: org.name, attrs: { maxlength: 100 } });
    const slug = formField({ label: "Slug", name: "slug", value: org.slug, hint: "Lower-case letters, digits and hyphens; unique on this server.", attrs: { maxlength: 63 } });
    const settings = formField({
      label: "Settings (JSON)",
      name: "settings",
      type: "textarea",
      value: JSON.stringify(org.settings ?? {}, null, 2),
      hint: "A JSON object the organization's admins keep (branding and the like). Saving replaces it whole.",
      attrs: { rows: 5, spellcheck: "false" },
    });
    children.push(
      simpleForm({
        fields: [name, slug, settings],
        submit: "Save settings",
        handler: async (form) => {
          let parsed;
          try {
            parsed = JSON.parse(settings.control.value || "{}");
          } catch {
            parsed = null;
          }
          if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
            throw { message: "Settings must be a JSON object, such as {}.", details: [{ path: "settings", message: "is not a JSON object" }] };
          }
          await ctx.api("PATCH", `/v1/organizations/${ctx.org.id}`, { json: { name: name.control.value.trim(), slug: slug.control.value.trim(), settings: parsed } });
          form.problem.hidden = true;
          await ctx.reload();
          ctx.toast("Settings saved.", "success");
        },
      }),
    );
  } else children.push(needs("org:write", "Changing the name, slug or settings"));

  if (ctx.can("org:suspend")) {
    children.push(
      el("h3", { text: "Suspension" }),
      el("p", { class: "hint", text: "Suspending stops everyone, you included, from using the organization's data until an owner lifts it." }),
      el("button", {
        type: "button",
        class: "danger",
        id: "suspend",
        text: "Suspend the organization",
        onclick: async () => {
          if (!(await ctx.confirm(`Suspend ${org.name}? Every member loses access until an owner lifts it.`, { confirmLabel: "Suspend" }))) return;
          if (await act(ctx, () => ctx.api("POST", `/v1/organizations/${ctx.org.id}/suspend`), "The organization is suspended.")) await ctx.reload();
        },
      }),
    );
  } else children.push(needs("org:suspend", "Suspending the organization"));
  fill(box, ...children);
}

function drawMembers(box, ctx, shared, redraw) {
  const canWrite = ctx.can("members:write");
  const path = (m) => `/v1/organizations/${ctx.org.id}/members/${encodeURIComponent(m.userId)}`;
  const update = async (m, change, success) => {
    await act(ctx, () => ctx.api("PATCH", path(m), { json: change }), success);
    await redraw.members().catch((error) => ctx.toast(error.message, "error"));
  };
  const columns = [
    { label: "Name", value: (m) => el("span", {}, m.displayName, m.userId === ctx.me.id ? " (you)" : "") },
    { label: "Email", value: (m) => m.email },
    {
      label: "Role",
      value: (m) => {
        if (!canWrite) return roleName(shared.roles, m.role);
        const id = `role-${m.userId}`;
        const select = el(
          "select",
          { id, "aria-label": `Role of ${m.displayName}`, onchange: (e) => update(m, { role: e.target.value }, `${m.displayName} is now ${roleName(shared.roles, e.target.value)}.`) },
          roleOptions(shared.roles).map((o) => el("option", { value: o.value, selected: o.value === m.role, text: o.label })),
        );
        return select;
      },
    },
    { label: "Status", value: (m) => badge(m.status) },
    { label: "Joined", value: (m) => formatDate(m.joinedAt) },
  ];
  if (canWrite) {
    columns.push({
      label: "Actions",
      value: (m) =>
        el(
          "div",
          { class: "row-actions" },
          el("button", {
            type: "button",
            text: m.status === "active" ? "Disable" : "Enable",
            "aria-label": `${m.status === "active" ? "Disable" : "Enable"} ${m.displayName}`,
            onclick: () => update(m, { status: m.status === "active" ? "disabled" : "active" }, `${m.displayName} is ${m.status === "active" ? "disabled" : "active"}.`),
          }),
          el("button", {
            type: "button",
            class: "danger",
            text: "Remove",
            "aria-label": `Remove ${m.displayName}`,
            onclick: async () => {
              if (!(await ctx.confirm(`Remove ${m.displayName} (${m.email}) from ${ctx.org.name}? Their API keys here are revoked.`, { confirmLabel: "Remove" }))) return;
              await act(ctx, () => ctx.api("DELETE", path(m)), `${m.displayName} was removed.`);
              await redraw.members().catch((error) => ctx.toast(error.message, "error"));
            },
          }),
        ),
    });
  }
  fill(box, heading(box), table(columns, shared.members, { empty: "No members.", rowKey: (m) => m.userId }), canWrite ? null : needs("members:write", "Changing roles, disabling or removing members"));
}

async function drawInvites(box, ctx, shared, redraw) {
  if (!ctx.can("invites:write")) {
    fill(box, heading(box), needs("invites:write", "Seeing and sending invites"));
    return;
  }
  const base = `/v1/invites/${ctx.org.id}`;
  const invites = await ctx.api("GET", base);
  const result = el("div", { id: "invite-result" });
  const email = formField({ label: "Email address", name: "email", type: "email", required: true, attrs: { maxlength: 254, autocomplete: "off" } });
  const role = formField({ label: "Role", name: "role", type: "select", value: "member", options: roleOptions(shared.roles.filter((r) => r.id !== "owner" || ctx.org.role === "owner")) });
  const hours = formField({ label: "Valid for (hours)", name: "expiresInHours", type: "number", hint: "Empty for the server's default.", attrs: { min: 1, max: 720, inputmode: "numeric" } });
  const form = simpleForm({
    className: "inline",
    fields: [email, role, hours],
    submit: "Send invite",
    handler: async () => {
      const body = { email: email.control.value.trim(), role: role.control.value };
      if (hours.control.value) body.expiresInHours = Number(hours.control.value);
      const invite = await ctx.api("POST", base, { json: body });
      await redraw.invites();
      const out = document.getElementById("invite-result");
      if (invite.mailed) fill(out, el("p", { class: "notice", "data-kind": "success", role: "status", text: `Invite mailed to ${invite.email}.` }));
      else if (invite.inviteUrl) {
        fill(out, 
          el(
            "div",
            { class: "notice show-once", "data-kind": "success", role: "status" },
            el("p", { text: `Mail is off: give ${invite.email} this link yourself. It is shown once.` }),
            el("input", { type: "text", readOnly: true, value: invite.inviteUrl, class: "secret-value", "aria-label": "Invite link", id: "invite-link" }),
            copyButton(invite.inviteUrl, "Copy link"),
          ),
        );
      }
    },
  });
  const columns = [
    { label: "Email", value: (i) => i.email },
    { label: "Role", value: (i) => roleName(shared.roles, i.role) },
    { label: "Sent", value: (i) => formatDate(i.createdAt) },
    { label: "Expires", value: (i) => formatDate(i.expiresAt) },
    {
      label: "Actions",
      value: (i) =>
        el("button", {
          type: "button",
          class: "danger",
          text: "Withdraw",
          "aria-label": `Withdraw the invite to ${i.email}`,
          onclick: async () => {
            if (!(await ctx.confirm(`Withdraw the invite to ${i.email}? Its link stops working.`, { confirmLabel: "Withdraw" }))) return;
            await act(ctx, () => ctx.api("DELETE", `${base}/${encodeURIComponent(i.id)}`), "Invite withdrawn.");
            await redraw.invites();
          },
        }),
    },
  ];
  fill(box, heading(box), form, result, el("h3", { text: "Open invites" }), table(columns, invites, { empty: "No open invites.", rowKey: (i) => i.id }));
}

async function drawRoles(box, ctx, shared, redraw) {
  const canWrite = ctx.can("roles:write");
  const permissions = await ctx.api("GET", "/v1/permissions");
  const checkboxes = (chosen, prefix) =>
    el(
      "fieldset",
      { class: "perm-grid" },
      el("legend", { text: "Permissions" }),
      permissions.map((p) => {
        const id = `${prefix}-${p.key.replace(/[^a-z_]/g, "-")}`;
        return el(
          "div",
          { class: "field check" },
          el("input", { type: "checkbox", id, name: "permissions", value: p.key, checked: chosen.includes(p.key) }),
          el("label", { for: id, text: p.key }),
          el("p", { class: "hint", text: p.description }),
        );
      }),
    );
  const picked = (form) => [...form.querySelectorAll("input[name=permissions]:checked")].map((c) => c.value);

  const list = el("div", { class: "roles" });
  for (const role of shared.roles) {
    const details = el("details", { class: "role panel", dataset: { id: role.id } }, el("summary", {}, el("strong", { text: role.name }), " ", role.builtIn ? badge("built-in") : badge("custom", "active"), " ", el("span", { class: "hint", text: role.description })));
    if (role.builtIn || !canWrite) {
      details.append(el("p", { class: "hint", text: role.builtIn ? "Built-in roles cannot be changed." : "" }), el("p", { class: "mono", text: role.permissions.join(", ") || "no permissions" }));
    } else {
      const name = formField({ label: "Name", name: "name", value: role.name, attrs: { maxlength: 64 } });
      const description = formField({ label: "Description", name: "description", value: role.description, attrs: { maxlength: 500 } });
      const form = simpleForm({
        fields: [name, description, checkboxes(role.permissions, `edit-${role.id}`)],
        submit: "Save role",
        handler: async (f) => {
          await ctx.api("PATCH", `/v1/roles/${encodeURIComponent(role.id)}`, { json: { name: name.control.value.trim(), description: description.control.value, permissions: picked(f) } });
          ctx.toast(`Role ${name.control.value.trim()} saved.`, "success");
          await redraw.roles();
        },
      });
      details.append(
        form,
        el("button", {
          type: "button",
          class: "danger",
          text: "Delete role",
          onclick: async () => {
            if (!(await ctx.confirm(`Delete the role ${role.name}?`, { confirmLabel: "Delete" }))) return;
            if (await act(ctx, () => ctx.api("DELETE", `/v1/roles/${encodeURIComponent(role.id)}`), `Role ${role.name} deleted.`)) await redraw.roles();
          },
        }),
      );
    }
    list.append(details);
  }
  const children = [heading(box), list];
  if (canWrite) {
    const name = formField({ label: "Name", name: "name", required: true, attrs: { maxlength: 64 } });
    const description = formField({ label: "Description", name: "description", attrs: { maxlength: 500 } });
    children.push(
      el("h3", { text: "New custom role" }),
      simpleForm({
        fields: [name, description, checkboxes([], "new-role")],
        submit: "Create role",
        handler: async (f) => {
          await ctx.api("POST", "/v1/roles", { json: { name: name.control.value.trim(), description: description.control.value, permissions: picked(f) } });
          ctx.toast(`Role ${name.control.value.trim()} created.`, "success");
          await redraw.roles();
        },
      }),
    );
  } else children.push(needs("roles:write", "Creating and changing custom roles"));
  fill(box, ...children);
  // The members' role pickers list the roles too.
  drawMembersIfShown(ctx, shared, redraw);
}

function drawMembersIfShown(ctx, shared, redraw) {
  const members = document.getElementById("members");
  if (members) drawMembers(members, ctx, shared, redraw);
}

async function drawGroups(box, ctx, shared, base, noun) {
  const groups = await ctx.api("GET", base);
  const canWrite = ctx.can("teams:write");
  const memberName = (id) => shared.members.find((m) => m.userId === id)?.displayName ?? id;
  const picker = (chosen, prefix) =>
    el(
      "fieldset",
      { class: "perm-grid" },
      el("legend", { text: "Members" }),
      shared.members.map((m) => {
        const id = `${prefix}-${m.userId}`;
        return el("div", { class: "field check" }, el("input", { type: "checkbox", id, name: "memberIds", value: m.userId, checked: chosen.includes(m.userId) }), el("label", { for: id, text: `${m.displayName} (${m.email})` }));
      }),
    );
  const picked = (form) => [...form.querySelectorAll("input[name=memberIds]:checked")].map((c) => c.value);
  const redrawSelf = () => guard(box, () => drawGroups(box, ctx, shared, base, noun));

  const list = el("div", {});
  for (const group of groups) {
    const details = el("details", { class: "panel group", dataset: { id: group.id } }, el("summary", {}, el("strong", { text: group.name }), " ", el("span", { class: "hint", text: `${group.memberIds.length} ${group.memberIds.length === 1 ? "member" : "members"}${group.description ? ` · ${group.description}` : ""}` })));
    if (!canWrite) {
      details.append(el("p", { text: group.memberIds.map(memberName).join(", ") || "No members." }));
    } else {
      const name = formField({ label: "Name", name: "name", value: group.name, attrs: { maxlength: 100 } });
      const description = formField({ label: "Description", name: "description", value: group.description, attrs: { maxlength: 500 } });
      details.append(
        simpleForm({
          fields: [name, description, picker(group.memberIds, `${noun}-${group.id}`)],
          submit: `Save ${noun}`,
          handler: async (f) => {
            await ctx.api("PATCH", `${base}/${encodeURIComponent(group.id)}`, { json: { name: name.control.value.trim(), description: description.control.value, memberIds: picked(f) } });
            ctx.toast(`${name.control.value.trim()} saved.`, "success");
            await redrawSelf();
          },
        }),
        el("button", {
          type: "button",
          class: "danger",
          text: `Delete ${noun}`,
          onclick: async () => {
            if (!(await ctx.confirm(`Delete the ${noun} ${group.name}?`, { confirmLabel: "Delete" }))) return;
            if (await act(ctx, () => ctx.api("DELETE", `${base}/${encodeURIComponent(group.id)}`), `${group.name} deleted.`)) await redrawSelf();
          },
        }),
      );
    }
    list.append(details);
  }
  const children = [heading(box), groups.length ? list : emptyState(`No ${noun}s yet.`)];
  if (canWrite) {
    const name = formField({ label: "Name", name: "name", required: true, attrs: { maxlength: 100 } });
    const description = formField({ label: "Description", name: "description", attrs: { maxlength: 500 } });
    children.push(
      el("h3", { text: `New ${noun}` }),
      simpleForm({
        fields: [name, description, picker([], `new-${noun}`)],
        submit: `Create ${noun}`,
        handler: async (f) => {
          await ctx.api("POST", base, { json: { name: name.control.value.trim(), description: description.control.value, memberIds: picked(f) } });
          ctx.toast(`${name.control.value.trim()} created.`, "success");
          await redrawSelf();
        },
      }),
    );
  } else children.push(needs("teams:write", `Creating and changing ${noun}s`));
  fill(box, ...children);
}
