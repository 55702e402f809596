// The page a password link opens (`/reset-password?token=...`): sets the new password
// with `POST /v1/auth/reset-password`.

import {
  checkNewPassword, clear, postJson, setBusy, showError, showSuccess, takeToken,
} from "./forms.js";

const token = takeToken();
const form = document.getElementById("reset-form");
const problem = document.getElementById("problem");
const outcome = document.getElementById("outcome");

if (token === null) {
  document.getElementById("no-token").hidden = false;
} else {
  // The listener first: a form shown without it would submit natively.
  form.addEventListener("submit", submit);
  form.hidden = false;
  form.elements.password.focus();
}

async function submit(event) {
  event.preventDefault();
  clear(problem, form);
  const { password, passwordRepeat } = form.elements;
  if (!checkNewPassword(problem, form, password, passwordRepeat)) return;

  setBusy(form, true);
  try {
    await postJson("/v1/auth/reset-password", { token, password: password.value });
    finish();
    showSuccess(
      outcome,
      "Your password is set.",
      "Sign in with your email address and the new password. Every device that was "
        + "signed in to your account has been signed out.",
    );
  } catch (error) {
    if (error.status === 401) {
      finish();
      showError(
        outcome,
        error,
        null,
        "This link is invalid, has expired or was already used. Ask for a new one: use "
          + "“Forgot password” again, or ask your administrator.",
      );
      outcome.focus();
    } else {
      showError(problem, error, form);
    }
  } finally {
    setBusy(form, false);
  }
}

/** The token is spent (or dead): the form has nothing more to do. */
function finish() {
  form.reset();
  form.hidden = true;
}
