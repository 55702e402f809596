// /login: signs in with email and password (POST /v1/auth/login through api.js Session),
// then goes on to `?next=` (a path of this site) or the workspace, /app. The access token stays in the
// page's memory; the refresh token in this tab's sessionStorage, so a reload of the next
// page stays signed in and no other tab or origin can read it.
//
// Identity providers (GET /v1/auth/providers): one button each, a plain link to
// /v1/auth/oauth/{id}. The provider's callback comes back here with `?sso=1`; the page
// then collects the outcome with POST /v1/auth/sso/complete (an HttpOnly cookie names it,
// so no token is ever in the address) and goes on, or shows why the sign-in was refused.

import { Session, request } from "./js/api.js";
import { clear, sentence, setBusy, showError, showFieldError } from "./forms.js";

const form = document.getElementById("login-form");
const problem = document.getElementById("problem");
const ssoProblem = document.getElementById("sso-problem");

/** Where to go after signing in: only a path on this site, never another origin. */
function next() {
  const target = new URL(location.href).searchParams.get("next");
  return target && target.startsWith("/") && !target.startsWith("//") ? target : "/app";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clear(problem, form);
  const { email, password } = form.elements;
  if (!email.value.trim()) {
    showFieldError(problem, form, email, "Enter your email address.");
    return;
  }
  if (!password.value) {
    showFieldError(problem, form, password, "Enter your password.");
    return;
  }
  setBusy(form, true);
  try {
    await new Session().login(email.value.trim(), password.value);
    location.assign(next());
  } catch (error) {
    showError(problem, error, form);
    setBusy(form, false);
  }
});

async function showProviders() {
  let list;
  try {
    list = await request("GET", "/v1/auth/providers");
  } catch {
    return; // The password form still works.
  }
  const nav = document.getElementById("providers");
  for (const provider of list.providers) {
    const link = document.createElement("a");
    link.className = "button provider";
    link.href = provider.signInUrl;
    link.dataset.provider = provider.id;
    link.textContent = `Sign in with ${provider.displayName}`;
    nav.append(link);
  }
  nav.hidden = list.providers.length === 0;
  document.getElementById("sso-only").hidden = !list.ssoOnly;
}

async function finishSso() {
  const url = new URL(location.href);
  if (!url.searchParams.has("sso")) return;
  url.searchParams.delete("sso");
  history.replaceState(null, "", url.pathname + url.search);
  try {
    await new Session().completeSso();
    location.assign(next());
  } catch (error) {
    showError(ssoProblem, error, null, `The sign-in was refused: ${sentence(error.message)}`);
  }
}

showProviders();
finishSso();
