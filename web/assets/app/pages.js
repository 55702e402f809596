// The workspace's pages: the shell (shell.js) builds the navigation from this list,
// showing only the pages `allowed(ctx)`, and renders the one whose `path` matches the
// address (`:name` segments become `params.name`). `module` is relative to this file and
// exports `render(root, ctx, params)`. The server still checks every call: hiding a page
// only spares a person a page that could do nothing for them.

export const PAGES = [
  { path: "/app", title: "Overview", section: "Workspace", module: "./pages/home.js", allowed: () => true },
  { path: "/app/files", title: "Files", section: "Workspace", module: "./pages/files.js", allowed: (ctx) => ctx.can("files:read") },
  { path: "/app/files/:id", title: "File", section: "Workspace", module: "./pages/files.js", allowed: (ctx) => ctx.can("files:read"), hidden: true },
  { path: "/app/secrets", title: "Secrets", section: "Workspace", module: "./pages/secrets.js", allowed: (ctx) => ctx.can("kv:read") },
  { path: "/app/api-keys", title: "API keys", section: "Workspace", module: "./pages/api-keys.js", allowed: (ctx) => ctx.can("api_keys:read") },
  { path: "/app/webhooks", title: "Webhooks", section: "Workspace", module: "./pages/webhooks.js", allowed: (ctx) => ctx.can("webhooks:read") },
  { path: "/app/organization", title: "Organization", section: "Organization", module: "./pages/organization.js", allowed: (ctx) => ctx.can("org:read") || ctx.org?.status === "suspended" },
  { path: "/app/billing", title: "Plan and billing", section: "Organization", module: "./pages/billing.js", allowed: (ctx) => ctx.can("billing:read") },
  { path: "/app/audit", title: "Audit log", section: "Organization", module: "./pages/audit.js", allowed: (ctx) => ctx.can("audit:read") },
  { path: "/app/admin", title: "Instance admin", section: "Instance", module: "./pages/admin.js", allowed: (ctx) => ctx.isInstanceAdmin },
  { path: "/app/account", title: "Account", section: "You", module: "./pages/account.js", allowed: () => true },
];

/** The page for `pathname` and its params, or null. Trailing slashes are ignored. */
export function match(pathname) {
  const parts = split(pathname);
  for (const page of PAGES) {
    const pattern = split(page.path);
    if (pattern.length !== parts.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < pattern.length; i += 1) {
      if (pattern[i].startsWith(":")) {
        try {
          params[pattern[i].slice(1)] = decodeURIComponent(parts[i]);
        } catch {
          ok = false;
        }
      } else if (pattern[i] !== parts[i]) ok = false;
      if (!ok) break;
    }
    if (ok) return { page, params };
  }
  return null;
}

function split(path) {
  return path.split("/").filter(Boolean);
}
