// /setup?token=: first-run setup (POST /v1/setup) creates the first admin and their
// organization, then signs them in (api.js Session) and goes on to /send.

import { Session, request } from "./js/api.js";
import { checkNewPassword, clear, setBusy, showError, showFieldError, takeToken } from "./forms.js";

const token = takeToken();
const form = document.getElementById("setup-form");
const problem = document.getElementById("problem");

if (token === null) {
  document.getElementById("no-token").hidden = false;
} else {
  form.addEventListener("submit", setup);
  form.hidden = false;
}

async function setup(event) {
  event.preventDefault();
  clear(problem, form);
  const { organizationName, displayName, email, password, passwordRepeat } = form.elements;
  for (const [field, text] of [
    [organizationName, "Name the organization."],
    [displayName, "Enter your name."],
    [email, "Enter your email address."],
  ]) {
    if (!field.value.trim()) {
      showFieldError(problem, form, field, text);
      return;
    }
  }
  if (!checkNewPassword(problem, form, password, passwordRepeat)) return;
  setBusy(form, true);
  try {
    const pair = await request("POST", "/v1/setup", {
      body: {
        token,
        organizationName: organizationName.value.trim(),
        displayName: displayName.value.trim(),
        email: email.value.trim(),
        password: password.value,
      },
    });
    new Session().adopt(pair);
    location.assign("/send");
  } catch (error) {
    showError(problem, error, form);
    setBusy(form, false);
  }
}
