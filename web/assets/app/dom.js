// DOM helpers of the workspace pages. The UI's policy requires Trusted Types, so no
// string ever becomes HTML: everything is built with createElement and textContent.

import { sentence, showError } from "../forms.js";

export { formatBytes, sentence } from "../forms.js";

let nextId = 0;
/** An id unique in this document, for label/field and aria-describedby pairs. */
export function uid(prefix = "f") {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * `el("button", {class: "primary", type: "button", onclick: fn}, "Save")`.
 * Attributes: `class`, `text`, `dataset` (object), `on<event>` (a function), `hidden`,
 * `disabled`, `checked`, `selected`, `required`, `value`, `className`, `textContent`,
 * `open` (set as properties), any other
 * as an attribute (`false`/`null`/`undefined` leave it out). Children: nodes, strings
 * (as text), arrays of either; `null`/`false` are skipped.
 */
const PROPERTIES = [
  "hidden", "disabled", "checked", "selected", "required", "value", "multiple", "readOnly",
  "className", "textContent", "open",
];

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (PROPERTIES.includes(key)) node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

/** Replaces `node`'s children as `el` appends them: `null` and `false` are skipped (the
 *  DOM's own `replaceChildren` would show them as the text "null"). */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

/** A page's heading with an optional lead paragraph. */
export function pageHeader(title, lead) {
  return el("div", { class: "page-header" }, el("h1", { text: title }), lead ? el("p", { class: "lead", text: lead }) : null);
}

/** A titled part of a page: `<section aria-labelledby>` with its `<h2>`. */
export function section(title, ...children) {
  const id = uid("section");
  return el("section", { class: "panel", "aria-labelledby": id }, el("h2", { id, text: title }), ...children);
}

/**
 * A table. `columns`: `[{label, value: (row) => Node|string, class}]`; `rows`: the data.
 * Wrapped in a horizontally scrolling box so a wide table never widens the page on a
 * phone. With no rows and `empty` given, the empty state instead. `rowKey(row)` becomes
 * the row's `data-id`; `rowData(row)` (an object) more of its `data-` attributes (the
 * webhook log's `data-status`, say).
 */
export function table(columns, rows, { caption, empty, rowKey, rowData } = {}) {
  if (rows.length === 0 && empty) return emptyState(empty);
  const head = el("tr", {}, columns.map((c) => el("th", { scope: "col", class: c.class, text: c.label })));
  const body = rows.map((row) =>
    el(
      "tr",
      { dataset: rowKey || rowData ? { ...(rowKey ? { id: rowKey(row) } : {}), ...(rowData ? rowData(row) : {}) } : undefined },
      columns.map((c) => {
        const value = c.value(row);
        return el("td", { class: c.class, "data-label": c.label }, value ?? "—");
      }),
    ),
  );
  return el(
    "div",
    { class: "table-wrap" },
    el("table", { class: "data" }, caption ? el("caption", { text: caption }) : null, el("thead", {}, head), el("tbody", {}, body)),
  );
}

/**
 * A labelled control in a `.field`. `type` "select" takes `options` ([{value, label}] or
 * strings), "textarea" a textarea, "checkbox" a check field; else an `<input type>`.
 * `attrs` go on the control. The control is `.control` of the returned element.
 */
export function formField({ label, name, type = "text", value, hint, required, options, attrs = {} }) {
  const id = uid(name ?? "field");
  const hintId = hint ? `${id}-hint` : undefined;
  const common = { id, name, required, "aria-describedby": hintId, ...attrs };
  let control;
  if (type === "select") {
    control = el(
      "select",
      common,
      (options ?? []).map((o) => {
        const opt = typeof o === "string" ? { value: o, label: o } : o;
        return el("option", { value: opt.value, selected: String(opt.value) === String(value ?? ""), text: opt.label });
      }),
    );
  } else if (type === "textarea") {
    control = el("textarea", { ...common, rows: attrs.rows ?? 3 });
    control.value = value ?? "";
  } else if (type === "checkbox") {
    control = el("input", { ...common, type, checked: Boolean(value) });
  } else {
    control = el("input", { ...common, type, value: value ?? "" });
  }
  const field =
    type === "checkbox"
      ? el("div", { class: "field check" }, control, el("label", { for: id, text: label }), hint ? el("p", { id: hintId, class: "hint", text: hint }) : null)
      : el("div", { class: "field" }, el("label", { for: id, text: label }), control, hint ? el("p", { id: hintId, class: "hint", text: hint }) : null);
  field.control = control;
  return field;
}

/** What a page shows when there is nothing to list. */
export function emptyState(text) {
  return el("p", { class: "empty-state", text });
}

/** What a page shows while it loads. */
export function loadingState(text = "Loading…") {
  return el("p", { class: "loading", role: "status", text });
}

/** An error as the page shows it: the envelope's message, its details, the request id. */
export function errorState(error) {
  const box = el("div", { class: "notice", role: "alert", tabindex: "-1" });
  showError(box, error ?? {}, null);
  return box;
}

/** An empty alert box for a form's problems (see `onSubmit`). */
export function problemBox() {
  return el("div", { class: "notice", role: "alert", tabindex: "-1", hidden: true });
}

/**
 * Runs `handler(form)` on submit with the form's controls disabled while it runs; an
 * error is shown in `box` (the envelope's message, details against their fields).
 */
export function onSubmit(form, box, handler) {
  form.noValidate = true;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    box.hidden = true;
    const controls = [...form.elements].filter((c) => !c.disabled);
    for (const c of controls) c.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      await handler(form);
    } catch (error) {
      showError(box, error, form);
      box.focus();
    } finally {
      for (const c of controls) c.disabled = false;
      form.setAttribute("aria-busy", "false");
    }
  });
  return form;
}

/**
 * A button that copies `text` (or what `text()` returns at the click) to the clipboard and
 * says whether it worked. `name` is its accessible name when several copy buttons share a
 * page ("Copy db-password").
 */
export function copyButton(text, label = "Copy", { name } = {}) {
  const status = el("span", { class: "copy-status", role: "status" });
  const button = el("button", {
    type: "button",
    class: "copy",
    text: label,
    "aria-label": name,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(typeof text === "function" ? text() : text);
        status.textContent = "Copied.";
      } catch {
        status.textContent = "Copying failed: select the text and copy it yourself.";
      }
    },
  });
  return el("span", { class: "copy-box" }, button, status);
}

/**
 * The "shown once" box for a raw API key or a webhook secret: `title`, why it must be
 * copied now (`explanation`), the value (`.once-value`, selectable as a whole), a copy
 * button, and "I stored it" to dismiss the box. It takes the focus so a screen reader
 * reads it at once.
 */
export function showOnce(title, value, explanation) {
  const box = el(
    "section",
    { class: "show-once notice", "data-kind": "success", role: "status", tabindex: "-1", "aria-label": title },
    el("p", {}, el("strong", { text: title })),
    el("p", { text: explanation ?? "Copy it now: it is shown only this once and cannot be shown again." }),
    el("p", {}, el("code", { class: "once-value", text: value })),
  );
  const done = el("button", { type: "button", text: "I stored it", onclick: () => box.remove() });
  box.append(el("div", { class: "actions" }, copyButton(value), done));
  queueMicrotask(() => box.focus());
  return box;
}

/** A date and time for people, in the browser's locale; "—" for none. */
export function formatDate(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

/** A short status label (`data-status` lets CSS colour it). */
export function badge(text, status = text) {
  return el("span", { class: "badge-status", dataset: { status }, text });
}

/** The message of an error, as a sentence. */
export function messageOf(error) {
  return sentence(error?.message);
}

/** The target of a response's `Link: <...>; rel="next"` (a path of this site), or null. */
export function nextLink(response) {
  const header = response.headers.get("Link");
  if (!header) return null;
  for (const part of header.split(",")) {
    const found = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part.trim());
    if (found) {
      const url = new URL(found[1], location.href);
      if (url.origin === location.origin) return url.pathname + url.search;
    }
  }
  return null;
}

/** A form with the given fields, a submit button and its problem box (`form.problem`). */
export function simpleForm({ fields, submit, className, handler, extra }) {
  const problem = problemBox();
  const form = el("form", { class: className, method: "post" }, fields, problem, extra ?? null, el("button", { type: "submit", class: "primary", text: submit }));
  form.problem = problem;
  onSubmit(form, problem, handler);
  return form;
}
