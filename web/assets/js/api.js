// The one API client: every call the pages make goes through here. It adds credentials
// (a link secret, a bearer token), turns the error envelope (SPEC §3,
// `{"error": {"code", "message", "details", "requestId"}}`) into an ApiError carrying the
// envelope's message, and refreshes a signed-in session once when its access token has
// expired. Nothing here logs a token or writes one to localStorage.

import { secretHeaders } from "./transfer-link.js";

/** An answer other than 2xx, with the fields of the error envelope. */
export class ApiError extends Error {
  constructor(status, code, message, details = [], requestId = null, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
    /** Seconds from `Retry-After` (429, 503), when the server sent it. */
    this.retryAfter = retryAfter;
  }
}

/** The ApiError a failed response stands for (reads its body). */
export async function errorOf(response) {
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Not JSON: a proxy in front of sealbox answered. The status says enough.
  }
  const error = data?.error ?? {};
  const retry = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  return new ApiError(
    response.status,
    error.code ?? `HTTP_${response.status}`,
    error.message ?? `The server answered ${response.status} ${response.statusText}.`,
    Array.isArray(error.details) ? error.details : [],
    error.requestId ?? response.headers.get("X-Request-Id"),
    Number.isFinite(retry) ? retry : null,
  );
}

/** The error a fetch that never got an answer stands for. */
export function networkError() {
  return new ApiError(0, "NETWORK", "The server could not be reached. Check the connection and try again.");
}

/**
 * Sends one request. `options`: `body` (sent as JSON), `headers`, `accessToken` (Bearer),
 * `secret` (a transfer link secret, sent as X-Transfer-Secret), `signal`, and `raw` to get
 * the Response itself (for streams) instead of parsed JSON. Throws ApiError for anything
 * but 2xx; returns null for 204.
 */
export async function request(method, path, options = {}) {
  const headers = { Accept: "application/json", ...secretHeaders(options.secret), ...options.headers };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.accessToken) headers.Authorization = `Bearer ${options.accessToken}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: "no-store",
      // Only the identity-provider sign-in's HttpOnly cookie is ever wanted (`credentials:
      // "same-origin"` from its two calls); every other call carries no cookie at all.
      credentials: options.credentials ?? "omit",
      referrerPolicy: "no-referrer",
      signal: options.signal,
    });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw networkError();
  }
  if (!response.ok) throw await errorOf(response);
  if (options.raw) return response;
  if (response.status === 204) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** The public side of one transfer, as a link holder sees it (no account). */
export class PublicTransfer {
  constructor(transferId, secret) {
    this.base = `/v1/public/transfers/${encodeURIComponent(transferId)}`;
    this.secret = secret;
  }

  /** Name, message, files, expiry, downloads left, whether a password is needed. */
  view(token) {
    const query = token ? `?token=${encodeURIComponent(token)}` : "";
    return request("GET", `${this.base}${query}`, { secret: this.secret });
  }

  /** A download token (`{downloadToken, expiresIn}`); any password when none is set. */
  unlock(password) {
    return request("POST", `${this.base}/unlock`, { body: { password }, secret: this.secret });
  }

  /** The URL of one file under a download token. */
  fileUrl(fileId, token) {
    return `${this.base}/files/${encodeURIComponent(fileId)}?token=${encodeURIComponent(token)}`;
  }

  /** Fetches one file (a streaming Response). */
  file(fileId, token, signal) {
    return request("GET", this.fileUrl(fileId, token), { raw: true, secret: this.secret, signal });
  }
}

/**
 * A signed-in session: the access token lives only in this object; the refresh token in
 * `store` (the tab's sessionStorage by default: it survives a reload of this tab, other
 * tabs and origins cannot read it, and it is gone when the tab closes). A 401 on a call
 * refreshes once and retries; a failed refresh signs out.
 */
export class Session {
  static STORE_KEY = "sealbox.refresh";

  constructor(store = globalThis.sessionStorage) {
    this.store = store;
    this.accessToken = null;
    this.user = null;
    this.refreshing = null;
  }

  /** Keeps a pair from login, setup or refresh. */
  adopt(pair) {
    this.accessToken = pair.accessToken;
    this.user = pair.user ?? this.user;
    this.store?.setItem(Session.STORE_KEY, pair.refreshToken);
  }

  get signedIn() {
    return this.accessToken !== null || Boolean(this.store?.getItem(Session.STORE_KEY));
  }

  /** Collects the sign-in an identity provider's callback left for this browser (its
   *  HttpOnly cookie names it): the token pair, or `{outcome: "linked"}` after a link. */
  async completeSso() {
    const done = await request("POST", "/v1/auth/sso/complete", { credentials: "same-origin" });
    if (done.tokens) this.adopt(done.tokens);
    return done;
  }

  async login(email, password) {
    this.adopt(await request("POST", "/v1/auth/login", { body: { email, password } }));
    return this.user;
  }

  /** Exchanges the stored refresh token for a new pair; one exchange at a time. */
  refresh() {
    this.refreshing ??= (async () => {
      const refreshToken = this.store?.getItem(Session.STORE_KEY);
      if (!refreshToken) throw new ApiError(401, "UNAUTHORIZED", "Sign in to continue.");
      try {
        this.adopt(await request("POST", "/v1/auth/refresh", { body: { refreshToken } }));
      } catch (error) {
        if (error.status === 401) this.forget();
        throw error;
      }
    })().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /** A call as this user. */
  async call(method, path, options = {}) {
    if (this.accessToken === null) await this.refresh();
    try {
      return await request(method, path, { ...options, accessToken: this.accessToken });
    } catch (error) {
      if (error.status !== 401) throw error;
      await this.refresh();
      return request(method, path, { ...options, accessToken: this.accessToken });
    }
  }

  async logout() {
    const refreshToken = this.store?.getItem(Session.STORE_KEY);
    try {
      if (refreshToken) await request("POST", "/v1/auth/logout", { body: { refreshToken }, accessToken: this.accessToken });
    } finally {
      this.forget();
    }
  }

  forget() {
    this.accessToken = null;
    this.user = null;
    this.store?.removeItem(Session.STORE_KEY);
  }
}
