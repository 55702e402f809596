// Shows the server's health and version. No framework, no third-party code: the page's
// Content-Security-Policy allows only scripts served by sealbox itself.
"use strict";

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
  }
  return body;
}

function show(id, text, state) {
  const element = document.getElementById(id);
  element.textContent = text;
  if (state) element.dataset.state = state;
}

async function refresh() {
  try {
    await getJson("/health");
    show("status", "healthy", "ok");
  } catch (error) {
    show("status", `unavailable: ${error.message}`, "down");
  }
  try {
    const welcome = await getJson("/v1/welcome");
    show("version", welcome.version);
    show("api-version", welcome.apiVersion);
  } catch {
    // The status line already says what is wrong.
  }
}

refresh();
