// /app/secrets: the vault (src/http/keys.rs, kv.rs, recovery.rs): the key pair, the user
// secret that seals it, KV secrets and their read-only shares, and recovery trustees.
//
// The server seals and opens everything (docs/crypto.md); the page's part is to send the
// user secret with the calls that need it and to hold it in memory only (common-vault.js).
// A revealed value is drawn only while shown: Hide removes it from the page.

import {
  base64ToText, busy, colleagues, confirmAction, el, empty, field, IDLE_MS, isUnlocked, loading,
  memberSelect, notice, onVaultChange, rfc3339, say, secretProblem, textToBase64, unlock,
  vaultBar, vaultCall, when,
} from "./common-vault.js";
import { copyButton, table } from "../dom.js";

const enc = encodeURIComponent;

export async function render(root, ctx) {
  const canKeys = ctx.can("keys:write");
  const canRead = ctx.can("kv:read");
  const canWrite = ctx.can("kv:write");
  const canDelete = ctx.can("kv:delete");
  const canShare = ctx.can("shares:write");
  let status = await ctx.api("GET", "/v1/keys/status");
  const cleanups = [];

  root.append(el("h1", {}, "Secrets"), el("p", { className: "lead" }, "Secrets are encrypted under a key pair whose private half only your user secret opens. sealbox stores the names of your secrets in the clear, their values only encrypted."));
  const keysSection = el("section", { className: "panel", "aria-labelledby": "keys-h" });
  const kvSection = el("section", { className: "panel", "aria-labelledby": "kv-h" });
  const sharedSection = el("section", { className: "panel", "aria-labelledby": "kv-shared-h" });
  const recoverySection = el("section", { className: "panel", "aria-labelledby": "recovery-h" });
  root.append(keysSection, kvSection, sharedSection, recoverySection);

  // --- key pair -----------------------------------------------------------------------
  function drawKeys() {
    keysSection.replaceChildren(el("h2", { id: "keys-h" }, "Key pair"));
    if (!status.hasEcc) {
      keysSection.append(
        el("p", {}, "You have no key pair yet. Generating one creates a post-quantum key pair (X-Wing: ML-KEM-768 and X25519). Its private half is stored only sealed under a key derived from your user secret."),
        el("p", { className: "notice", "data-kind": "warning", id: "secret-warning" }, el("strong", {}, "Choose the user secret carefully and keep it safe. "), "It is not your password. The server never stores it and cannot recover it: if you lose it, what is sealed to your key pair cannot be opened again, unless you left recovery material with trustees."),
      );
      if (!canKeys) {
        keysSection.append(el("p", { className: "hint" }, "Your role cannot generate a key pair (it lacks keys:write)."));
        return;
      }
      const secret = el("input", { type: "password", id: "new-secret", autocomplete: "new-password", required: true });
      const repeat = el("input", { type: "password", id: "new-secret-repeat", autocomplete: "new-password", required: true });
      const problem = notice();
      const form = el("form", { id: "generate-form" }, field("User secret", secret, "At least 8 bytes. A long passphrase is best."), field("User secret again", repeat), problem, el("button", { type: "submit", className: "primary" }, "Generate my key pair"));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        problem.clear();
        const why = secretProblem(secret.value) ?? (secret.value !== repeat.value ? "The two secrets do not match." : null);
        if (why) {
          problem.show(why);
          return;
        }
        await busy(form, async () => {
          try {
            const keys = await vaultCall(ctx, "POST", "/v1/keys/generate", { secret: secret.value });
            unlock(secret.value);
            secret.value = "";
            repeat.value = "";
            status = await ctx.api("GET", "/v1/keys/status");
            say(ctx, `Key pair generated (fingerprint ${keys.fingerprint}).`);
            drawAll();
          } catch (error) {
            problem.show(error);
          }
        });
      });
      keysSection.append(form);
      return;
    }
    keysSection.append(el("dl", { className: "facts" },
      el("dt", {}, "Fingerprint"), el("dd", {}, el("code", { id: "key-fingerprint" }, status.fingerprint ?? "—")),
      el("dt", {}, "Created"), el("dd", {}, when(status.createdUtc)),
      el("dt", {}, "Secret last changed"), el("dd", {}, when(status.updatedUtc))));
    if (status.requiresRekey) {
      keysSection.append(el("p", { className: "notice", "data-kind": "warning" }, "A recovery handed your private key back. Change the user secret below, with the recovery secret as the current one, to finish it."));
    }
    keysSection.append(vaultBar(ctx, status, (secret) => vaultCall(ctx, "GET", "/v1/kv/shared", { secret })));
    if (canKeys) keysSection.append(rekeyForm());
  }

  function rekeyForm() {
    const current = el("input", { type: "password", autocomplete: "current-password", required: true, id: "rekey-current" });
    const next = el("input", { type: "password", autocomplete: "new-password", required: true, id: "rekey-new" });
    const repeat = el("input", { type: "password", autocomplete: "new-password", required: true, id: "rekey-repeat" });
    const problem = notice();
    const form = el("form", { id: "rekey-form" }, field("Current user secret", current, status.requiresRekey ? "The recovery secret." : null), field("New user secret", next, "Everything sealed to your key pair stays readable; only the secret that opens it changes. The server cannot recover the new one either."), field("New user secret again", repeat), problem, el("button", { type: "submit" }, "Change user secret"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.clear();
      const why = secretProblem(next.value) ?? (next.value !== repeat.value ? "The two new secrets do not match." : null);
      if (why) {
        problem.show(why);
        return;
      }
      await busy(form, async () => {
        try {
          await vaultCall(ctx, "POST", "/v1/keys/rekey", { secret: current.value, newSecret: next.value });
          unlock(next.value);
          for (const input of [current, next, repeat]) input.value = "";
          status = await ctx.api("GET", "/v1/keys/status");
          say(ctx, "User secret changed.");
          drawAll();
          const again = keysSection.querySelector("details.rekey");
          if (again) {
            again.open = true;
            again.querySelector(".notice").show("User secret changed. Use the new one from now on.", "success");
          }
        } catch (error) {
          problem.show(error);
        }
      });
    });
    return el("details", { className: "rekey" }, el("summary", {}, "Change user secret (rekey)"), form);
  }

  // --- KV secrets -----------------------------------------------------------------------
  function drawKv() {
    kvSection.replaceChildren(el("h2", { id: "kv-h" }, "Your secrets"));
    if (!status.hasEcc) {
      kvSection.append(empty("Generate your key pair first."));
      return;
    }
    const listBox = el("div", { id: "kv-list" });
    if (!canRead) kvSection.append(el("p", { className: "hint" }, "Your role cannot read secret values (it lacks kv:read)."));
    if (!canWrite) kvSection.append(el("p", { className: "hint" }, "Your role cannot store secrets (it lacks kv:write)."));
    if (canWrite) kvSection.append(createForm(listBox));
    kvSection.append(listBox);
    loadKv(listBox);
  }

  function createForm(listBox) {
    const name = el("input", { type: "text", id: "kv-name", required: true, maxlength: "256", autocomplete: "off" });
    const value = el("textarea", { id: "kv-value", required: true, rows: "3", autocomplete: "off", spellcheck: "false" });
    const problem = notice();
    const form = el("form", { id: "kv-form" }, field("Name", name, "Stored in the clear: the server can read names, not values."), field("Value", value), problem, el("button", { type: "submit", className: "primary" }, "Store secret"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.clear();
      await busy(form, async () => {
        try {
          await put(name.value, value.value);
          problem.show(`Stored ${name.value}.`, "success");
          name.value = "";
          value.value = "";
          loadKv(listBox);
        } catch (error) {
          problem.show(error);
        }
      });
    });
    return el("details", { className: "create", open: true }, el("summary", {}, "Store a new secret"), form);
  }

  /** PUT with the secret when unlocked, so an overwrite keeps the DEK and its shares. */
  function put(key, text) {
    const path = `/v1/kv/${enc(key)}`;
    const json = { valueB64: textToBase64(text) };
    return isUnlocked() ? vaultCall(ctx, "PUT", path, { json }) : ctx.api("PUT", path, { json });
  }

  function loadKv(listBox) {
    return loading(listBox, async () => {
      const names = await ctx.api("GET", "/v1/kv");
      if (!names.length) return empty(canWrite ? "No secrets yet. Store one above." : "No secrets yet.");
      const problem = notice();
      return [problem, table([
        { label: "Name", value: (n) => el("code", { className: "kv-name" }, n) },
        { label: "Value", value: (n) => revealCell(`/v1/kv/${enc(n)}`, n, problem) },
        { label: "Actions", value: (n) => kvActions(n, listBox, problem) },
      ], names, { caption: "Your secrets" })];
    });
  }

  /** Reveal (click to show), copy, hide again. Needs the vault unlocked and kv:read. */
  function revealCell(path, label, problem) {
    const cell = el("div", { className: "reveal" });
    const draw = () => {
      cell.replaceChildren(el("button", {
        type: "button", className: "reveal-button", "aria-label": `Reveal ${label}`, disabled: !canRead || !isUnlocked(),
        title: !canRead ? "Your role cannot read secrets (kv:read)" : !isUnlocked() ? "Unlock the vault to reveal" : null,
        onclick: async () => {
          try {
            const answer = await vaultCall(ctx, "GET", path);
            const text = base64ToText(answer.valueB64);
            const shown = el("code", { className: "secret-value" }, text ?? answer.valueB64);
            const copy = copyButton(text ?? answer.valueB64, "Copy", { name: `Copy ${label}` });
            const hide = el("button", { type: "button", "aria-label": `Hide ${label}`, onclick: draw }, "Hide");
            cell.replaceChildren(shown, el("span", { className: "hint" }, text === null ? " (not text: base64)" : ""), el("span", { className: "actions" }, copy, hide));
            hide.focus();
          } catch (error) {
            problem.show(error);
          }
        },
      }, "Reveal"));
    };
    draw();
    cleanups.push(onVaultChange((unlocked) => { if (!unlocked || cell.querySelector(".reveal-button")) draw(); }));
    return cell;
  }

  function kvActions(name, listBox, problem) {
    const details = el("div", { className: "row-details" });
    const buttons = el("div", { className: "actions" });
    const open = (button, build) => {
      const wasOpen = button.getAttribute("aria-expanded") === "true";
      for (const b of buttons.querySelectorAll("[aria-expanded]")) b.setAttribute("aria-expanded", "false");
      details.replaceChildren();
      if (!wasOpen) {
        button.setAttribute("aria-expanded", "true");
        loading(details, build);
      }
    };
    if (canWrite) {
      buttons.append(el("button", { type: "button", "aria-expanded": "false", "aria-label": `Overwrite ${name}`, onclick: (e) => open(e.currentTarget, () => overwriteForm(name, listBox)) }, "Overwrite"));
    }
    if (canShare) {
      buttons.append(el("button", { type: "button", "aria-expanded": "false", "aria-label": `Share ${name}`, onclick: (e) => open(e.currentTarget, () => shareForm(name)) }, "Share"));
    }
    if (canDelete) {
      buttons.append(el("button", {
        type: "button", className: "danger", "aria-label": `Delete ${name}`, onclick: async () => {
          if (!(await confirmAction(ctx, `Delete the secret ${name}? Every share of it ends too.`))) return;
          try {
            await ctx.api("DELETE", `/v1/kv/${enc(name)}`);
            say(ctx, `${name} deleted.`);
            loadKv(listBox);
          } catch (error) {
            problem.show(error);
          }
        },
      }, "Delete"));
    }
    return el("div", {}, buttons, details);
  }

  async function overwriteForm(name, listBox) {
    const value = el("textarea", { rows: "3", required: true, autocomplete: "off", spellcheck: "false" });
    const problem = notice();
    const form = el("form", { className: "overwrite-form" }, field(`New value of ${name}`, value, isUnlocked() ? "Existing shares see the new value." : "The vault is locked: the value gets a new key, and existing shares stop opening until you share again. Unlock first to keep them."), problem, el("button", { type: "submit", className: "primary" }, "Overwrite"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      await busy(form, async () => {
        try {
          const stored = await put(name, value.value);
          value.value = "";
          problem.show(`${name} is now at version ${stored.version}.`, "success");
        } catch (error) {
          problem.show(error);
        }
      });
    });
    return form;
  }

  async function shareForm(name) {
    const [people, shares] = await Promise.all([colleagues(ctx), ctx.api("GET", `/v1/kv/${enc(name)}/shares`)]);
    const who = memberSelect(people);
    const alias = el("input", { type: "text", maxlength: "256" });
    const expires = el("input", { type: "datetime-local" });
    const problem = notice();
    const list = el("div");
    const drawShares = (items) => list.replaceChildren(items.length ? table([
      { label: "Shared with", value: (s) => s.recipientName },
      { label: "Expires", value: (s) => when(s.expiresUtc) },
      { label: "First opened", value: (s) => when(s.firstAccessUtc) },
      { label: "Last opened", value: (s) => when(s.lastAccessUtc) },
      {
        label: "", value: (s) => el("button", {
          type: "button", className: "danger", "aria-label": `Revoke ${s.recipientName}'s share`, onclick: async () => {
            try {
              await ctx.api("DELETE", `/v1/kv/${enc(name)}/shares/${enc(s.recipientUserId)}`);
              drawShares(items.filter((x) => x.shareId !== s.shareId));
            } catch (error) {
              problem.show(error);
            }
          },
        }, "Revoke"),
      },
    ], items, { caption: `Shares of ${name}` }) : empty("Not shared with anyone."));
    drawShares(shares);
    const form = el("form", { className: "share-form" }, field("Member", who), field("Name they see (optional)", alias, "Stored encrypted."), field("Expires (optional)", expires), problem,
      el("button", { type: "submit", className: "primary", disabled: !isUnlocked(), title: isUnlocked() ? null : "Unlock the vault to share" }, "Share read-only"),
      isUnlocked() ? null : el("p", { className: "hint" }, "Sharing re-seals the secret's key to the member: unlock the vault first."));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.clear();
      await busy(form, async () => {
        try {
          await vaultCall(ctx, "POST", `/v1/kv/${enc(name)}/shares`, { json: { recipientUserId: who.value, permission: "read", alias: alias.value || undefined, expiresUtc: rfc3339(expires.value) } });
          problem.show(`Shared with ${who.selectedOptions[0].textContent}.`, "success");
          drawShares(await ctx.api("GET", `/v1/kv/${enc(name)}/shares`));
        } catch (error) {
          problem.show(error);
        }
      });
    });
    return [form, list];
  }

  // --- shared with me -------------------------------------------------------------------
  function drawShared() {
    sharedSection.replaceChildren(el("h2", { id: "kv-shared-h" }, "Shared with me"));
    if (!status.hasEcc) {
      sharedSection.append(empty("Generate your key pair first: shares are sealed to it."));
      return;
    }
    if (!isUnlocked()) {
      sharedSection.append(empty("Unlock the vault to see secrets shared with you."));
      return;
    }
    const box = el("div", { id: "kv-shared-list" });
    sharedSection.append(box);
    loading(box, async () => {
      const shares = await vaultCall(ctx, "GET", "/v1/kv/shared");
      if (!shares.length) return empty("Nobody has shared a secret with you.");
      const problem = notice();
      return [problem, table([
        { label: "Name", value: (s) => s.alias ?? "(no name given)" },
        { label: "From", value: (s) => s.ownerName },
        { label: "Expires", value: (s) => when(s.expiresUtc) },
        { label: "Value", value: (s) => revealCell(`/v1/kv/shared/${enc(s.shareId)}`, s.alias ?? `${s.ownerName}'s secret`, problem) },
        {
          label: "", value: (s) => el("button", {
            type: "button", "aria-label": `Remove ${s.alias ?? "share"} from your list`, onclick: async () => {
              if (!(await confirmAction(ctx, `Give up this secret? ${s.ownerName} would have to share it again.`))) return;
              try {
                await ctx.api("DELETE", `/v1/kv/shared/${enc(s.shareId)}`);
                drawShared();
              } catch (error) {
                problem.show(error);
              }
            },
          }, "Remove"),
        },
      ], shares, { caption: "Secrets shared with me" })];
    });
  }

  // --- recovery -----------------------------------------------------------------------
  function drawRecovery() {
    recoverySection.replaceChildren(el("h2", { id: "recovery-h" }, "Recovery trustees"),
      el("p", { className: "hint" }, "Trustees are members who hold recovery material for you: two encrypted shares your recovery tool made, stored as sent and never opened by the server. If you lose your user secret, they hand the material back and you restore your key pair with it."));
    if (!status.hasEcc) {
      recoverySection.append(empty("Generate your key pair first."));
      return;
    }
    const mine = el("div", { id: "trustees" });
    const held = el("div", { id: "held-shares" });
    recoverySection.append(mine);
    if (canKeys) recoverySection.append(trusteeForm(mine));
    recoverySection.append(el("h3", {}, "Held for others"), held);
    loadTrustees(mine);
    loading(held, async () => {
      const items = await ctx.api("GET", "/v1/recovery/shares");
      if (!items.length) return empty("Nobody has chosen you as a trustee.");
      const problem = notice();
      return [problem, table([
        { label: "Owner", value: (h) => h.ownerName },
        { label: "XOR layer", value: (h) => (h.xorApplied ? `yes${h.xorSaltHint ? ` (hint: ${h.xorSaltHint})` : ""}` : "no") },
        { label: "Updated", value: (h) => when(h.updatedUtc) },
        {
          label: "", value: (h) => {
            const out = el("div");
            out.append(el("button", {
              type: "button", "aria-label": `Show ${h.ownerName}'s recovery material`, onclick: async () => {
                try {
                  const material = await ctx.api("GET", `/v1/recovery/shares/${enc(h.ownerUserId)}`);
                  const text = JSON.stringify(material, null, 2);
                  out.replaceChildren(el("p", { className: "hint" }, `Hand this back to ${h.ownerName} only, over a channel you trust.`), el("pre", { className: "material" }, text), el("div", { className: "actions" }, copyButton(text, "Copy", { name: `Copy ${h.ownerName}'s recovery material` })));
                } catch (error) {
                  problem.show(error);
                }
              },
            }, "Show material"));
            return out;
          },
        },
      ], items, { caption: "Recovery material you hold" })];
    });
  }

  function loadTrustees(box) {
    return loading(box, async () => {
      const trustees = await ctx.api("GET", "/v1/recovery/trustees");
      if (!trustees.length) return empty("No trustees yet.");
      const problem = notice();
      return [problem, table([
        { label: "Trustee", value: (t) => t.trusteeName },
        { label: "XOR layer", value: (t) => (t.xorApplied ? "yes" : "no") },
        { label: "Updated", value: (t) => when(t.updatedUtc) },
        {
          label: "", value: (t) => (canKeys ? el("button", {
            type: "button", className: "danger", "aria-label": `Remove trustee ${t.trusteeName}`, onclick: async () => {
              if (!(await confirmAction(ctx, `Remove ${t.trusteeName} as a trustee? They will no longer hold your recovery material.`))) return;
              try {
                await ctx.api("DELETE", `/v1/recovery/trustees/${enc(t.trusteeUserId)}`);
                loadTrustees(box);
              } catch (error) {
                problem.show(error);
              }
            },
          }, "Remove") : null),
        },
      ], trustees, { caption: "Your trustees" })];
    });
  }

  function trusteeForm(listBox) {
    const slot = el("div");
    const details = el("details", { className: "trustee-add" }, el("summary", {}, "Add or replace a trustee"), slot);
    details.addEventListener("toggle", () => {
      if (!details.open || slot.childElementCount) return;
      loading(slot, async () => {
        const people = await colleagues(ctx);
        const who = memberSelect(people, { needKeys: false });
        const ecc = el("textarea", { rows: "2", required: true, spellcheck: "false" });
        const kyber = el("textarea", { rows: "2", required: true, spellcheck: "false" });
        const xor = el("input", { type: "checkbox" });
        const hint = el("input", { type: "text", maxlength: "256" });
        const problem = notice();
        const form = el("form", { id: "trustee-form" }, field("Trustee", who), field("First share (base64)", ecc, "As your recovery tool wrote it; at most 16 KiB."), field("Second share (base64)", kyber), field("The shares were XORed with a value from a salt only I know", xor), field("Salt reminder (optional, not the salt)", hint), problem, el("button", { type: "submit", className: "primary" }, "Leave with trustee"));
        form.addEventListener("submit", async (event) => {
          event.preventDefault();
          problem.clear();
          await busy(form, async () => {
            try {
              await ctx.api("PUT", `/v1/recovery/trustees/${enc(who.value)}`, { json: { encryptedPrivateKeyEccShareB64: ecc.value.trim(), encryptedPrivateKeyKyberShareB64: kyber.value.trim(), xorApplied: xor.checked, xorSaltHint: hint.value || undefined } });
              problem.show(`${who.selectedOptions[0].textContent} now holds your recovery material.`, "success");
              ecc.value = "";
              kyber.value = "";
              loadTrustees(listBox);
            } catch (error) {
              problem.show(error);
            }
          });
        });
        return form;
      });
    });
    return details;
  }

  function drawAll() {
    drawKeys();
    drawKv();
    drawShared();
    drawRecovery();
  }

  drawAll();
  cleanups.push(onVaultChange((unlocked, why) => {
    keysSection.querySelector(".vault-bar")?.redraw();
    drawShared();
    if (!unlocked && why === "idle") say(ctx, `The vault locked itself after ${IDLE_MS / 60000} minutes without activity.`, "info");
  }));
  return () => {
    for (const fn of cleanups) fn();
  };
}

