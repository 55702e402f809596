// What the vault pages (Files, Secrets, API keys, Webhooks) share: the user secret held in
// this tab's memory, the calls that carry it, and the few DOM pieces only they use (the
// lock bar, notices, member pickers). Tables, copy buttons and the shown-once box are the
// shell's (../dom.js), as on every workspace page.
//
// The user secret opens the private key the server keeps sealed (docs/crypto.md). It lives
// only in the `held` variable of this module: never in localStorage, sessionStorage, a
// cookie or the URL, so a reload or a closed tab forgets it. It is also forgotten on the
// Lock button, on an idle timeout (IDLE_MS without a key press, click or touch in the
// page), and when the tab signs out. A JS string cannot be wiped in place; dropping the
// only reference is what the page can do.

import { request } from "../../js/api.js";
import { formatBytes, sentence } from "../../forms.js";
// The DOM helpers every workspace page uses are the shell's; `empty` and `when` are its
// `emptyState` and `formatDate` under the names the vault pages use.
import { el, emptyState as empty, formatDate as when, uid } from "../dom.js";

export { el, empty, formatBytes, sentence, uid, when };

/** Idle time after which the secret is forgotten: the server's own unlock cache (5 min). */
export const IDLE_MS = 5 * 60 * 1000;

let held = null;
let idleTimer = null;
const listeners = new Set();

function touch() {
  if (held === null) return;
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => lock("idle"), IDLE_MS);
}

for (const type of ["keydown", "pointerdown", "touchstart"]) {
  document.addEventListener(type, touch, { capture: true, passive: true });
}

/** Whether the tab holds the user secret now. */
export function isUnlocked() {
  return held !== null;
}

/** Keeps `secret` in memory (after the server accepted it) and starts the idle timer. */
export function unlock(secret) {
  held = secret;
  touch();
  notify();
}

/** Forgets the secret. `why`: "button", "idle" or "signout" (shown by the pages). */
export function lock(why = "button") {
  if (held === null) return;
  held = null;
  clearTimeout(idleTimer);
  notify(why);
}

/** Calls `fn(unlocked, why)` on every lock and unlock; returns the unsubscribe function. */
export function onVaultChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function notify(why) {
  for (const fn of [...listeners]) fn(held !== null, why);
}

/**
 * A header value carrying the secret's UTF-8 bytes. Fetch sends a header string's code
 * units as bytes (each must be below 256), so the UTF-8 bytes go one per character; the
 * server reads the header's bytes as UTF-8 (src/http/vault.rs).
 */
export function secretHeaderValue(secret) {
  let out = "";
  for (const byte of new TextEncoder().encode(secret)) out += String.fromCharCode(byte);
  return out;
}

/** Why a secret cannot be sent as a header, or null. */
export function secretProblem(secret) {
  if (new TextEncoder().encode(secret).length < 8) return "The user secret must be at least 8 bytes long.";
  // HTTP trims header values and forbids control characters.
  if (secret !== secret.trim()) return "The user secret cannot start or end with a space.";
  if (/[\u0000-\u001f\u007f]/.test(secret)) return "The user secret cannot contain control characters.";
  return null;
}

/**
 * A call that carries the user secret (`X-User-Secret`; `options.newSecret` adds
 * `X-New-User-Secret`). It goes through api.js `request` with the session's token rather
 * than the shell's `ctx.api`, because a wrong secret is a 401 too: `Session.call` would
 * take it for an expired token, refresh and send the wrong secret a second time (two
 * guesses counted by the server's throttle). Here only a 401 that is not about the secret
 * refreshes. `options.secret` overrides the held secret (to check one before keeping it).
 */
export async function vaultCall(ctx, method, path, options = {}) {
  const secret = options.secret ?? held;
  if (secret === null || secret === undefined) throw new Error("Unlock the vault first.");
  const headers = { "X-User-Secret": secretHeaderValue(secret) };
  if (options.newSecret) headers["X-New-User-Secret"] = secretHeaderValue(options.newSecret);
  if (ctx.org?.id) headers["X-Organization-Id"] = ctx.org.id;
  const session = ctx.session;
  const send = () =>
    request(method, path, { body: options.json, headers, accessToken: session.accessToken, raw: options.raw });
  if (session.accessToken === null) await session.refresh();
  try {
    return await send();
  } catch (error) {
    if (error.status !== 401 || /secret/i.test(error.message)) throw error;
    await session.refresh();
    return send();
  }
}

// --- DOM ------------------------------------------------------------------------------

/** A labelled field: `control` is an input, select or textarea (given an id here if none). */
export function field(labelText, control, hint) {
  if (!control.id) control.id = uid("f");
  const parts = [el("label", { for: control.id }, labelText), control];
  if (hint) {
    const hintId = `${control.id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(el("p", { className: "hint", id: hintId }, hint));
  }
  return el("div", { className: control.type === "checkbox" ? "field check" : "field" }, ...parts);
}

/** A box for problems (role=alert) or results; `show(error | text, kind)`, `clear()`. */
export function notice() {
  const box = el("div", { className: "notice", role: "status", tabindex: "-1", hidden: true });
  box.show = (what, kind = "error") => {
    box.replaceChildren();
    box.dataset.kind = kind;
    box.setAttribute("role", kind === "error" ? "alert" : "status");
    box.append(el("p", {}, messageOf(what)));
    if (what?.requestId) box.append(el("p", { className: "request-id hint" }, `Request id: ${what.requestId}`));
    box.hidden = false;
    if (kind === "error") box.focus();
  };
  box.clear = () => {
    box.hidden = true;
    box.replaceChildren();
  };
  return box;
}

/** What to show for an error: an API error envelope's message as the server wrote it. */
export function messageOf(what) {
  if (typeof what === "string") return what;
  if (what?.name === "ApiError" || what?.status !== undefined) {
    const details = Array.isArray(what.details) && what.details.length
      ? ` (${what.details.map((d) => [d.path, d.message].filter(Boolean).join(" ")).join("; ")})`
      : "";
    return `${sentence(what.message)}${details}`;
  }
  return sentence(what?.message ?? String(what));
}

/** "Loading..." then whatever `load()` draws into `box`, or its error as the message. */
export async function loading(box, load) {
  box.setAttribute("aria-busy", "true");
  box.replaceChildren(el("p", { className: "hint loading" }, "Loading…"));
  try {
    const content = await load();
    box.replaceChildren(...[content].flat().filter(Boolean));
  } catch (error) {
    const problem = notice();
    box.replaceChildren(problem);
    problem.show(error);
  } finally {
    box.removeAttribute("aria-busy");
  }
}

/** Asks before a destructive action: the shell's dialog, or a native modal one. */
export function confirmAction(ctx, message) {
  if (typeof ctx.confirm === "function") return ctx.confirm(message);
  return new Promise((resolve) => {
    const yes = el("button", { type: "button", className: "primary", value: "yes" }, "Confirm");
    const no = el("button", { type: "button", value: "no" }, "Cancel");
    const dialog = el("dialog", { className: "confirm", "aria-label": "Confirm" }, el("p", {}, message), el("div", { className: "actions" }, yes, no));
    const finish = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    yes.addEventListener("click", () => finish(true));
    no.addEventListener("click", () => finish(false));
    dialog.addEventListener("cancel", () => finish(false));
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}

/** A short message for the user (the shell's toast when there is one). */
export function say(ctx, message, kind = "success") {
  if (typeof ctx.toast === "function") ctx.toast(message, kind);
}

/** A `datetime-local` input's value as RFC 3339 UTC, or undefined when empty. */
export function rfc3339(localValue) {
  if (!localValue) return undefined;
  const date = new Date(localValue);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** Disables a form's controls while `work()` runs. */
export async function busy(form, work) {
  const controls = [...form.querySelectorAll("button, input, select, textarea")].filter((c) => !c.disabled);
  for (const c of controls) c.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    for (const c of controls) c.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

/** UTF-8 text as standard base64 (the KV API's `valueB64`). */
export function textToBase64(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** A KV value for display: its UTF-8 text, or null when the bytes are not UTF-8. */
export function base64ToText(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** The organization's other active members, for share and trustee pickers. */
export async function colleagues(ctx) {
  const everyone = await ctx.api("GET", "/v1/users/org");
  return everyone.filter((u) => u.id !== ctx.me?.id && u.id !== ctx.me?.user?.id);
}

/** A <select> of colleagues (those without keys are listed but cannot receive shares). */
export function memberSelect(people, { needKeys = true } = {}) {
  const select = el("select", { required: true }, el("option", { value: "" }, "Choose a member…"));
  for (const person of people) {
    const noKeys = needKeys && !person.hasKeys;
    select.append(el("option", { value: person.id, disabled: noKeys }, `${person.displayName} <${person.email}>${noKeys ? " (no key pair yet)" : ""}`));
  }
  return select;
}

/**
 * The vault's lock bar: unlocked, a Lock button; locked, a form asking for the user
 * secret, which `verify(secret)` checks with the server before it is kept (a wrong one is
 * the server's 401 message). `status` is `GET /v1/keys/status`.
 */
export function vaultBar(ctx, status, verify) {
  const bar = el("section", { className: "vault-bar", "aria-label": "Vault lock" });
  const draw = () => {
    bar.replaceChildren();
    if (!status.hasEcc) {
      bar.append(el("p", { className: "hint" }, "You have no key pair yet, so nothing can be unlocked. ", el("a", { href: "/app/secrets" }, "Generate it on the Secrets page.")));
      return;
    }
    if (isUnlocked()) {
      const button = el("button", { type: "button", id: "vault-lock" }, "Lock");
      button.addEventListener("click", () => lock("button"));
      bar.dataset.state = "unlocked";
      bar.append(el("p", {}, el("span", { className: "badge", "data-kind": "ok" }, "Unlocked"), ` Your user secret is held in this tab's memory only, and forgotten after ${IDLE_MS / 60000} minutes without activity, on reload, or when you lock.`), button);
      return;
    }
    bar.dataset.state = "locked";
    const input = el("input", { type: "password", id: "vault-secret", autocomplete: "current-password", required: true });
    const problem = notice();
    const form = el("form", { className: "unlock-form", id: "unlock-form" }, field("User secret", input, "The secret you chose when you generated your key pair. The server cannot recover it."), problem, el("button", { type: "submit", className: "primary" }, "Unlock"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.clear();
      const secret = input.value;
      await busy(form, async () => {
        try {
          await verify(secret);
          input.value = "";
          unlock(secret);
        } catch (error) {
          problem.show(error);
        }
      });
    });
    bar.append(el("p", { className: "badge", "data-kind": "locked" }, "Locked"), form);
  };
  draw();
  bar.redraw = draw;
  return bar;
}
