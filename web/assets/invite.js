// The page an invite link opens (`/invite?token=...`): either creates an account with the
// invite (`POST /v1/auth/register`), or signs an existing account in and accepts it
// (`POST /v1/auth/login`, then `POST /v1/invites/accept`). The session either way is
// only used here, then signed out: nothing is kept in the browser.

import {
  checkNewPassword, clear, postJson, send, sentence, setBusy, showError, showFieldError,
  showSuccess, takeToken,
} from "./forms.js";

const token = takeToken();
const choices = document.getElementById("choices");
const outcome = document.getElementById("outcome");
const registerForm = document.getElementById("register-form");
const registerProblem = document.getElementById("register-problem");
const loginForm = document.getElementById("login-form");
const loginProblem = document.getElementById("login-problem");

const DEAD_INVITE = "This invite is invalid, has expired, was withdrawn or was already used. "
  + "Ask whoever invited you for a new one.";

if (token === null) {
  document.getElementById("no-token").hidden = false;
} else {
  // The listeners first: a form shown without them would submit natively.
  registerForm.addEventListener("submit", register);
  loginForm.addEventListener("submit", signInAndAccept);
  choices.hidden = false;
}

async function register(event) {
  event.preventDefault();
  clear(registerProblem, registerForm);
  const { email, displayName, password, passwordRepeat } = registerForm.elements;
  if (!email.value.trim()) {
    showFieldError(registerProblem, registerForm, email, "Enter the email address the invite was sent to.");
    return;
  }
  if (!displayName.value.trim()) {
    showFieldError(registerProblem, registerForm, displayName, "Enter the name others should see.");
    return;
  }
  if (!checkNewPassword(registerProblem, registerForm, password, passwordRepeat)) return;

  setBusy(registerForm, true);
  try {
    const signedIn = await postJson("/v1/auth/register", {
      email: email.value.trim(),
      password: password.value,
      displayName: displayName.value.trim(),
      inviteToken: token,
    });
    const membership = signedIn.user?.organizations?.[0];
    await signOut(signedIn);
    done(
      `Welcome, ${signedIn.user?.displayName ?? displayName.value.trim()}! Your account is ready.`,
      membership
        ? `You joined ${membership.name} as ${article(membership.role)} ${membership.role}.`
        : "You joined the organization.",
      "Sign in with your email address and password from now on.",
    );
  } catch (error) {
    if (error.status === 401) {
      dead(error);
    } else if (error.status === 409) {
      showError(registerProblem, error, registerForm,
        "An account with this email address already exists. Sign in below to accept the invite.");
      loginForm.elements.email.value = email.value.trim();
      loginForm.elements.password.focus();
    } else if (error.status === 403) {
      showError(registerProblem, error, registerForm, forbidden(error));
      if (isWrongAddress(error)) email.setAttribute("aria-invalid", "true");
    } else {
      showError(registerProblem, error, registerForm);
    }
  } finally {
    setBusy(registerForm, false);
  }
}

async function signInAndAccept(event) {
  event.preventDefault();
  clear(loginProblem, loginForm);
  const { email, password } = loginForm.elements;
  if (!email.value.trim()) {
    showFieldError(loginProblem, loginForm, email, "Enter your email address.");
    return;
  }
  if (!password.value) {
    showFieldError(loginProblem, loginForm, password, "Enter your password.");
    return;
  }

  setBusy(loginForm, true);
  let signedIn = null;
  try {
    signedIn = await postJson("/v1/auth/login", { email: email.value.trim(), password: password.value });
  } catch (error) {
    setBusy(loginForm, false);
    showError(loginProblem, error, loginForm, error.status === 401 ? "Wrong email address or password." : undefined);
    return;
  }
  try {
    const accepted = await postJson("/v1/invites/accept", { token }, signedIn.accessToken);
    const name = await organizationName(accepted.organizationId, signedIn);
    done(
      `You joined ${name} as ${article(accepted.role)} ${accepted.role}.`,
      `Signed in as ${signedIn.user?.email ?? email.value.trim()}; your account now belongs to it as well.`,
    );
  } catch (error) {
    if (error.status === 401) {
      dead(error);
    } else if (error.status === 403) {
      showError(loginProblem, error, loginForm, forbidden(error));
    } else {
      showError(loginProblem, error, loginForm);
    }
  } finally {
    setBusy(loginForm, false);
    await signOut(signedIn);
  }
}

/** The organization's name as the new member sees it; its id if that cannot be read. */
async function organizationName(id, signedIn) {
  const known = signedIn.user?.organizations?.find((o) => o.id === id);
  if (known) return known.name;
  try {
    const organization = await send("GET", `/v1/organizations/${encodeURIComponent(id)}`, undefined, signedIn.accessToken);
    return organization.name;
  } catch {
    return `the organization ${id}`;
  }
}

/** Ends the session this page opened; the person signs in from their own client. */
async function signOut(signedIn) {
  if (!signedIn?.refreshToken) return;
  try {
    await postJson("/v1/auth/logout", { refreshToken: signedIn.refreshToken });
  } catch {
    // Nothing to tell the person: the session expires on its own.
  }
}

function isWrongAddress(error) {
  return error.status === 403 && /another email/i.test(error.message);
}

function forbidden(error) {
  return isWrongAddress(error)
    ? "This invite was sent to another email address. Use the address the invitation was sent to."
    : sentence(error.message);
}

function done(...paragraphs) {
  for (const form of [registerForm, loginForm]) form.reset();
  choices.hidden = true;
  showSuccess(outcome, ...paragraphs);
}

function dead(error) {
  for (const form of [registerForm, loginForm]) form.reset();
  choices.hidden = true;
  showError(outcome, error, null, DEAD_INVITE);
  outcome.focus();
}

function article(word) {
  return /^[aeiou]/i.test(word) ? "an" : "a";
}
