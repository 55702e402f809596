// What the pages that redeem a link share: taking the token out of the address, posting
// JSON to the API, and showing its answers. Tokens and passwords live only in the page's
// memory: nothing here logs them or writes them to storage. An ES module: the pages load
// it through their own module's `import`, which the Content-Security-Policy allows.

/** Reads `?token=` and removes it from the address bar and history entry at once, so the
 *  link does not linger in the history or a screenshot. Null when absent or empty. */
export function takeToken() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (url.searchParams.has("token")) {
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  const trimmed = token?.trim();
  return trimmed ? trimmed : null;
}

/** An answer other than 2xx, with the fields of the error envelope (SPEC §3). */
export class ApiError extends Error {
  constructor(status, code, message, details = [], requestId = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
  }
}

/** Sends `body` as JSON and returns the parsed answer (null for 204). `accessToken`, when
 *  given, goes in `Authorization: Bearer`. Throws ApiError for any other outcome. */
export async function send(method, path, body, accessToken) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, "NETWORK", "The server could not be reached. Check the connection and try again.");
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      // Not JSON: a proxy in front of sealbox answered. The status says enough.
    }
  }
  if (!response.ok) {
    const error = data?.error ?? {};
    throw new ApiError(
      response.status,
      error.code ?? `HTTP_${response.status}`,
      error.message ?? `The server answered ${response.status} ${response.statusText}.`,
      Array.isArray(error.details) ? error.details : [],
      error.requestId ?? response.headers.get("X-Request-Id"),
    );
  }
  return data;
}

/** POSTs JSON; see `send`. */
export function postJson(path, body, accessToken) {
  return send("POST", path, body, accessToken);
}

/** The visible label of the field named `name` in `form`, without a trailing colon. */
function labelOf(form, name) {
  const field = form?.elements.namedItem(name);
  const label = field?.labels?.[0]?.textContent?.trim();
  return label ? label.replace(/:$/, "") : null;
}

/** Shows `error` in `box` (an element with role="alert"): `message` (the page's own
 *  wording when given, else the server's), then each detail, named by the field's label.
 *  Fields the details name are marked invalid and the first one is focused. */
export function showError(box, error, form, message) {
  clearInvalid(form);
  box.replaceChildren();
  box.dataset.kind = "error";
  const lead = document.createElement("p");
  lead.textContent = message ?? sentence(error.message);
  box.append(lead);
  const details = (error.details ?? []).filter((d) => d && d.message);
  if (details.length > 0) {
    const list = document.createElement("ul");
    let first = null;
    for (const detail of details) {
      const item = document.createElement("li");
      const label = labelOf(form, detail.path);
      item.textContent = label ? `${label} ${detail.message}` : sentence(detail.path ? `${detail.path}: ${detail.message}` : detail.message);
      list.append(item);
      const field = form?.elements.namedItem(detail.path);
      if (field instanceof HTMLElement) {
        field.setAttribute("aria-invalid", "true");
        first ??= field;
      }
    }
    box.append(list);
    first?.focus();
  }
  if (error.requestId && error.status >= 500) {
    const id = document.createElement("p");
    id.className = "request-id";
    id.textContent = `Request id: ${error.requestId}`;
    box.append(id);
  }
  box.hidden = false;
}

/** Shows a problem found before anything was sent, on `field`. */
export function showFieldError(box, form, field, message) {
  clearInvalid(form);
  box.replaceChildren();
  box.dataset.kind = "error";
  const lead = document.createElement("p");
  lead.textContent = message;
  box.append(lead);
  box.hidden = false;
  field.setAttribute("aria-invalid", "true");
  field.focus();
}

/** Shows a success: a heading-like first line and any further paragraphs. */
export function showSuccess(box, ...paragraphs) {
  box.replaceChildren();
  box.dataset.kind = "success";
  for (const text of paragraphs) {
    const p = document.createElement("p");
    p.textContent = text;
    box.append(p);
  }
  box.hidden = false;
  box.focus();
}

/** Hides `box` and unmarks the fields of `form`. */
export function clear(box, form) {
  box.hidden = true;
  box.replaceChildren();
  clearInvalid(form);
}

function clearInvalid(form) {
  if (!form) return;
  for (const field of form.querySelectorAll("[aria-invalid]")) {
    field.removeAttribute("aria-invalid");
  }
}

/** Disables every control of `form` while a request runs, so it is sent once. */
export function setBusy(form, busy) {
  for (const control of form.elements) control.disabled = busy;
  form.setAttribute("aria-busy", String(busy));
}

/** The shortest password the server accepts (it also refuses common ones). */
export const MIN_PASSWORD_CHARS = 10;

/** Checks a new password and its repetition before sending; returns true when fine,
 *  otherwise shows why in `box`. */
export function checkNewPassword(box, form, password, repeat) {
  if ([...password.value].length < MIN_PASSWORD_CHARS) {
    showFieldError(box, form, password, `Use at least ${MIN_PASSWORD_CHARS} characters for the password.`);
    return false;
  }
  if (password.value !== repeat.value) {
    showFieldError(box, form, repeat, "The two passwords do not match. Type the same password twice.");
    return false;
  }
  return true;
}

/** Capitalises the server's message and ends it with a full stop, for display. */
export function sentence(text) {
  const trimmed = String(text ?? "").trim();
  if (!trimmed) return "Something went wrong.";
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** A byte count for people: "1 byte", "812 bytes", "3.4 MiB", "12 GiB". */
export function formatBytes(n) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${n} ${n === 1 ? "byte" : "bytes"}`;
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
