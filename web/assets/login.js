// /login: signs in with email and password (POST /v1/auth/login through api.js Session),
// then goes on to `?next=` (a path of this site) or the workspace, /app. The access token stays in the
// page's memory; the refresh token in this tab's sessionStorage, so a reload of the next
// page stays signed in and no other tab or origin can read it.

import { Session } from "./js/api.js";
import { clear, setBusy, showError, showFieldError } from "./forms.js";

const form = document.getElementById("login-form");
const problem = document.getElementById("problem");

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
