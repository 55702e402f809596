// The workspace shell (/app and every path under it, one page routed by URL). It signs
// in through api.js `Session` (or sends the browser to /login?next=<this path>), loads
// the account (GET /v1/auth/me) and, for the organization picked in the header, the
// caller's role and permissions there (GET /v1/me with X-Organization-Id); draws the
// header (organization switcher, notifications bell, account menu) and the navigation
// from pages.js (only the pages `allowed(ctx)`), and renders the page the address names
// into <main id="page">. Links to /app/... are followed with the History API, so deep
// links, reload and the back button work.

import { Session } from "../js/api.js";
import { sentence } from "../forms.js";
import { PAGES, match } from "./pages.js";
import { el, emptyState, errorState, loadingState, pageHeader } from "./dom.js";

/** The organization this tab works in, kept across reloads of the tab only. */
const ORG_KEY = "sealbox.org";
/** How often the bell asks for the unread count while the tab is visible. */
const BELL_INTERVAL_MS = 60_000;
/** The bell counts up to this many unread notifications, then shows "99+". */
const BELL_LIMIT = 100;

const $ = (id) => document.getElementById(id);
const session = new Session();

const state = {
  user: null,
  orgId: null,
  who: null,
  permissions: new Set(),
  suspended: false,
  cleanup: null,
  renderToken: 0,
};

function here() {
  return location.pathname + location.search + location.hash;
}

function toLogin() {
  location.replace(`/login?next=${encodeURIComponent(here())}`);
}

function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    params.append(key, String(value));
  }
  const text = params.toString();
  if (!text) return path;
  return `${path}${path.includes("?") ? "&" : "?"}${text}`;
}

/** One API call in the current organization; a session that cannot be refreshed any
 *  more sends the browser to sign in again. */
async function call(method, path, { json, headers, query, signal, credentials } = {}, raw = false) {
  const orgHeaders = state.orgId ? { "X-Organization-Id": state.orgId } : {};
  try {
    return await session.call(method, withQuery(path, query), {
      body: json,
      headers: { ...orgHeaders, ...headers },
      raw,
      signal,
      credentials,
    });
  } catch (error) {
    if (error?.status === 401 && !session.signedIn) toLogin();
    throw error;
  }
}

function currentMembership() {
  return state.user?.organizations?.find((m) => m.id === state.orgId) ?? null;
}

/** What every page gets (see docs/web.md, "Workspace"). */
const ctx = {
  session,
  api: (method, path, options) => call(method, path, options, false),
  apiRaw: (method, path, options) => call(method, path, options, true),
  get me() {
    return state.user;
  },
  get org() {
    const m = currentMembership();
    if (!m) return null;
    return {
      id: m.id,
      name: state.who?.organization?.name ?? m.name,
      slug: state.who?.organization?.slug ?? null,
      role: state.who?.organization?.role ?? m.role,
      status: state.suspended ? "suspended" : m.organizationStatus,
    };
  },
  /** The organizations this account is an active member of. */
  get orgs() {
    return activeMemberships();
  },
  can: (permission) => state.permissions.has(permission),
  get isInstanceAdmin() {
    return Boolean(state.user?.isInstanceAdmin);
  },
  navigate,
  toast,
  confirm: confirmDialog,
  refreshBell,
  /** Reloads the account and the organization (after a page changed either), then
   *  redraws the header, the navigation and the page. */
  reload: async () => {
    await loadAccount();
    await loadOrganization();
    drawHeader();
    await render({ focus: false });
  },
};

function activeMemberships() {
  return (state.user?.organizations ?? []).filter((m) => m.status === "active");
}

async function loadAccount() {
  state.user = await session.call("GET", "/v1/auth/me");
  const active = activeMemberships();
  const ids = active.map((m) => m.id);
  const stored = sessionStorage.getItem(ORG_KEY);
  if (stored && ids.includes(stored)) state.orgId = stored;
  else if (state.orgId && ids.includes(state.orgId)) {
    // keep it
  } else if (state.user.defaultOrganizationId && ids.includes(state.user.defaultOrganizationId)) {
    state.orgId = state.user.defaultOrganizationId;
  } else state.orgId = ids[0] ?? null;
}

/** The caller's role and permissions in the current organization. A suspended one
 *  answers 403 ORG_SUSPENDED to everything: the shell says so and offers nothing. */
async function loadOrganization() {
  state.who = null;
  state.permissions = new Set();
  state.suspended = false;
  if (!state.orgId) return;
  try {
    state.who = await call("GET", "/v1/me");
    state.permissions = new Set(state.who.scopes ?? []);
  } catch (error) {
    if (error.code === "ORG_SUSPENDED") state.suspended = true;
    else throw error;
  }
}

function drawHeader() {
  const active = activeMemberships();
  const select = $("org-switch");
  select.replaceChildren(
    ...active.map((m) =>
      el("option", {
        value: m.id,
        selected: m.id === state.orgId,
        text: m.organizationStatus === "suspended" ? `${m.name} (suspended)` : m.name,
      }),
    ),
  );
  $("org-switch-box").hidden = active.length === 0;
  $("account-name").textContent = state.user.displayName || state.user.email;
  $("account-menu").hidden = false;
  $("bell").hidden = !state.orgId;

  const banner = $("org-banner");
  const org = ctx.org;
  if (state.suspended) {
    banner.textContent = `${org?.name ?? "This organization"} is suspended: its data cannot be used until an owner or an instance admin lifts the suspension.`;
    banner.hidden = false;
  } else if (!state.orgId) {
    banner.textContent = "You are not an active member of any organization yet.";
    banner.hidden = false;
  } else banner.hidden = true;
  drawNav();
}

function drawNav() {
  const nav = $("nav");
  const sections = new Map();
  for (const page of PAGES) {
    if (page.hidden || !page.allowed(ctx)) continue;
    if (!sections.has(page.section)) sections.set(page.section, []);
    sections.get(page.section).push(el("li", {}, el("a", { href: page.path, dataset: { path: page.path }, text: page.title })));
  }
  // Sending and the sent list are their own pages (web UI part 1), linked from here.
  if (ctx.can("transfers:write") || ctx.can("transfers:read")) {
    const transfers = [];
    if (ctx.can("transfers:write")) transfers.push(el("li", {}, el("a", { href: "/send", text: "Send files" })));
    transfers.push(el("li", {}, el("a", { href: "/transfers", text: "Your transfers" })));
    sections.set("Transfers", transfers);
  }
  nav.replaceChildren(
    ...[...sections].map(([title, items]) => {
      const id = `nav-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`;
      return el("div", { class: "nav-section" }, el("h2", { id, text: title }), el("ul", { "aria-labelledby": id }, items));
    }),
  );
  markNav();
}

function markNav() {
  const found = match(location.pathname);
  for (const link of $("nav").querySelectorAll("a[data-path]")) {
    const current = found && (found.page.path === link.dataset.path || (found.page.hidden && found.page.module === PAGES.find((p) => p.path === link.dataset.path)?.module));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function refreshBell() {
  const bell = $("bell");
  const count = $("bell-count");
  if (!state.orgId || state.suspended) {
    count.hidden = true;
    bell.setAttribute("aria-label", "Notifications");
    return;
  }
  try {
    const unread = await call("GET", "/v1/notifications", { query: { unread: true, limit: BELL_LIMIT } });
    const n = unread.length;
    count.textContent = n >= BELL_LIMIT ? "99+" : String(n);
    count.hidden = n === 0;
    bell.dataset.unread = String(n);
    bell.setAttribute("aria-label", n === 0 ? "Notifications: none unread" : `Notifications: ${count.textContent} unread`);
  } catch {
    // The bell is a hint; the account page shows the notifications and any error.
    count.hidden = true;
  }
}

/** Renders the page the address names. `focus` moves focus to it (after navigation,
 *  so a screen reader or keyboard user lands on the new page). */
async function render({ focus }) {
  const token = ++state.renderToken;
  if (state.cleanup) {
    try {
      state.cleanup();
    } catch {
      // A page's cleanup failing must not keep the next page from showing.
    }
    state.cleanup = null;
  }
  const main = $("page");
  delete main.dataset.rendered;
  const loading = loadingState();
  main.replaceChildren(loading);
  main.setAttribute("aria-busy", "true");
  markNav();
  closeNav();
  const done = () => {
    loading.remove();
    main.setAttribute("aria-busy", "false");
    // Which page is drawn, for the tests and for styles.
    main.dataset.rendered = location.pathname;
    if (focus) main.focus({ preventScroll: false });
    if (location.hash) document.getElementById(decodeURIComponent(location.hash.slice(1)))?.scrollIntoView();
  };

  const found = match(location.pathname);
  if (!found) {
    document.title = "Page not found · sealbox";
    main.append(pageHeader("Page not found"), emptyState("The workspace has no page at this address."), el("p", {}, el("a", { href: "/app", text: "Go to the overview" })));
    done();
    return;
  }
  const { page, params } = found;
  document.title = `${page.title} · sealbox`;
  if (!page.allowed(ctx)) {
    const why = page.path === "/app/admin" ? "Only instance admins can open this page." : state.suspended ? "The organization is suspended." : `Your role in ${ctx.org?.name ?? "this organization"} does not include this page.`;
    main.append(pageHeader(page.title), el("p", { class: "notice", "data-kind": "error", role: "alert", text: why }));
    done();
    return;
  }
  const root = el("div", { class: "page-root", dataset: { page: page.path } });
  main.append(root);
  // The page shows its own loading states section by section: the shell's indicator
  // goes as soon as the page draws anything, so it cannot shift the page (and move a
  // button from under a pointer) when the last section finishes. `aria-busy` stays on
  // until then.
  const drawing = new MutationObserver(() => {
    loading.remove();
    drawing.disconnect();
  });
  drawing.observe(root, { childList: true });
  try {
    const module = await import(new URL(page.module, import.meta.url).href);
    if (token !== state.renderToken) return;
    const cleanup = await module.render(root, ctx, params);
    if (token !== state.renderToken) {
      if (typeof cleanup === "function") cleanup();
      return;
    }
    if (typeof cleanup === "function") state.cleanup = cleanup;
  } catch (error) {
    if (token !== state.renderToken) return;
    root.replaceChildren(errorState(error));
  }
  done();
}

/** Goes to `path` (a path under /app) without reloading the document. */
function navigate(path, { replace = false } = {}) {
  const target = new URL(path, location.href);
  const samePage = target.pathname === location.pathname && target.search === location.search;
  if (replace) history.replaceState(null, "", target.pathname + target.search + target.hash);
  else history.pushState(null, "", target.pathname + target.search + target.hash);
  if (samePage && target.hash) {
    document.getElementById(decodeURIComponent(target.hash.slice(1)))?.scrollIntoView();
    return;
  }
  render({ focus: true });
}

function isWorkspacePath(url) {
  return url.origin === location.origin && (url.pathname === "/app" || url.pathname.startsWith("/app/"));
}

document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest?.("a[href]");
  if (!link || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (!isWorkspacePath(url)) return;
  event.preventDefault();
  $("account-menu").open = false;
  navigate(url.pathname + url.search + url.hash);
});

window.addEventListener("popstate", () => render({ focus: true }));

/** A passing message. The pages' own are sentences as written; an error's message comes
 *  from the server's envelope and is made one. */
function toast(message, kind = "info") {
  const text = kind === "error" ? sentence(message) : String(message);
  const item = el("div", { class: "toast notice", dataset: { kind }, role: kind === "error" ? "alert" : "status", text });
  $("toasts").append(item);
  setTimeout(() => item.remove(), 8000);
}

/** An accessible yes/no question (a modal <dialog>: focus stays in it, Escape cancels). */
function confirmDialog(message, { confirmLabel = "Confirm" } = {}) {
  const dialog = $("confirm-dialog");
  $("confirm-message").textContent = message;
  $("confirm-yes").textContent = confirmLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.showModal();
    $("confirm-no").focus();
  });
}

function closeNav() {
  $("nav").removeAttribute("data-open");
  $("nav-toggle").setAttribute("aria-expanded", "false");
}

$("nav-toggle").addEventListener("click", () => {
  const open = $("nav").hasAttribute("data-open");
  if (open) closeNav();
  else {
    $("nav").setAttribute("data-open", "");
    $("nav-toggle").setAttribute("aria-expanded", "true");
    $("nav").querySelector("a")?.focus();
  }
});

$("org-switch").addEventListener("change", async (event) => {
  state.orgId = event.target.value;
  sessionStorage.setItem(ORG_KEY, state.orgId);
  try {
    await loadOrganization();
  } catch (error) {
    toast(error.message, "error");
  }
  drawHeader();
  refreshBell();
  await render({ focus: false });
});

$("sign-out").addEventListener("click", async () => {
  sessionStorage.removeItem(ORG_KEY);
  try {
    await session.logout();
  } finally {
    location.assign("/login?next=/app");
  }
});

async function boot() {
  if (!session.signedIn) {
    toLogin();
    return;
  }
  try {
    await loadAccount();
    await loadOrganization();
  } catch (error) {
    if (error.status === 401) {
      toLogin();
      return;
    }
    $("page").replaceChildren(pageHeader("The workspace could not load"), errorState(error));
    return;
  }
  drawHeader();
  refreshBell();
  setInterval(() => {
    if (document.visibilityState === "visible") refreshBell();
  }, BELL_INTERVAL_MS);
  document.body.dataset.ready = "true";
  await render({ focus: false });
}

boot();
