// /app/webhooks: the organization's webhooks (src/http/webhooks.rs, docs/webhooks.md).
//
// The event picker is built from GET /v1/webhooks/events, each type with its description
// and example payload. A webhook's signing secret is in the answers that create or rotate
// it only: shown once. The delivery log pages through the `Link: rel="next"` header
// (older deliveries), and each delivery can be sent again (replay: same bytes, same
// webhook-id).

import {
  busy, confirmAction, el, empty, field, loading, notice, say, uid, when,
} from "./common-vault.js";
import { showOnce, table } from "../dom.js";

const enc = encodeURIComponent;

/** An instant as the reader's local time, in a `<time>` that keeps the exact one. */
function moment(iso) {
  return iso ? el("time", { datetime: iso }, when(iso)) : "—";
}

/** The `rel="next"` target of a Link header, or null. */
function nextLink(header) {
  const match = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header ?? "");
  return match ? match[1] : null;
}

export async function render(root, ctx) {
  const canWrite = ctx.can("webhooks:write");
  root.append(el("h1", {}, "Webhooks"), el("p", { className: "lead" }, "sealbox POSTs events to your endpoints, signed as Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature) with each webhook's secret, and retries failures on a growing schedule."));
  const onceSlot = el("div", { id: "webhook-once", "aria-live": "polite" });
  const createSection = el("section", { className: "panel", "aria-labelledby": "hook-create-h" });
  const listSection = el("section", { className: "panel", "aria-labelledby": "hook-list-h" });
  const listBox = el("div", { id: "webhooks-list" });
  root.append(onceSlot, createSection, listSection);
  listSection.append(el("h2", { id: "hook-list-h" }, "Your webhooks"), listBox);
  const catalog = await ctx.api("GET", "/v1/webhooks/events");

  function reveal(title, secret) {
    onceSlot.replaceChildren(showOnce(title, secret, "Copy the signing secret now and give it to your receiver: it is shown this once only."));
  }

  // --- create -------------------------------------------------------------------------
  createSection.append(el("h2", { id: "hook-create-h" }, "New webhook"));
  if (!canWrite) {
    createSection.append(el("p", { className: "hint" }, "Your role cannot create or change webhooks (it lacks webhooks:write)."));
  } else {
    createSection.append(createForm());
  }

  /** The event checkboxes; `prefix` keeps their ids (and so their labels) apart from
   *  another picker's on the page: the create form's is "event", an edit form's unique. */
  function eventPicker(selected = ["*"], prefix = "event") {
    const all = el("input", { type: "checkbox", id: `${prefix}-all`, value: "*", checked: selected.includes("*") });
    const boxes = [];
    const set = el("fieldset", { className: "events", id: `${prefix}-picker` }, el("legend", {}, "Events"), el("div", { className: "field check" }, all, el("label", { for: all.id }, el("strong", {}, "Every event"), " (*), including types added later")));
    const list = el("div", { className: "event-list" });
    for (const kind of catalog) {
      const id = `${prefix}-${kind.type.replace(/[^a-z0-9]/gi, "-")}`;
      const box = el("input", { type: "checkbox", value: kind.type, id, checked: selected.includes(kind.type) });
      boxes.push(box);
      list.append(el("div", { className: "event" },
        el("div", { className: "field check" }, box, el("label", { for: id }, el("code", {}, kind.type), ` ${kind.description}`, kind.emitted ? null : el("span", { className: "hint" }, " (not sent yet)"))),
        el("details", { className: "example" }, el("summary", {}, `Example payload of ${kind.type}`), el("pre", {}, JSON.stringify(kind.example, null, 2)))));
    }
    const sync = () => {
      for (const b of boxes) b.disabled = all.checked;
    };
    all.addEventListener("change", sync);
    sync();
    set.append(list);
    set.selected = () => (all.checked ? ["*"] : boxes.filter((b) => b.checked).map((b) => b.value));
    return set;
  }

  function retryFields(policy = { maxAttempts: 10, disableAfterConsecutiveFailures: 50 }) {
    const attempts = el("input", { type: "number", min: "1", max: "30", value: String(policy.maxAttempts), className: "max-attempts" });
    const disableAfter = el("input", { type: "number", min: "1", max: "10000", value: String(policy.disableAfterConsecutiveFailures), className: "disable-after" });
    const box = el("fieldset", { className: "retry" }, el("legend", {}, "Retry policy"),
      field("Attempts per delivery", attempts, "1 to 30, after 1 min, 5 min, 30 min, 2 h, 6 h, 12 h, then daily."),
      field("Disable after failures in a row", disableAfter, "1 to 10000."));
    box.value = () => ({ maxAttempts: Number(attempts.value), disableAfterConsecutiveFailures: Number(disableAfter.value) });
    return box;
  }

  function createForm() {
    const url = el("input", { type: "url", id: "hook-url", required: true, maxlength: "2048", placeholder: "https://example.com/hooks/sealbox" });
    const description = el("input", { type: "text", id: "hook-description", maxlength: "500" });
    const picker = eventPicker();
    const retry = retryFields();
    const problem = notice();
    const form = el("form", { id: "webhook-form" }, field("Endpoint URL", url, "http or https. Private and loopback addresses are refused unless the operator allowed them."), field("Description (optional)", description), picker, retry, problem, el("button", { type: "submit", className: "primary" }, "Create webhook"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.clear();
      const events = picker.selected();
      if (!events.length) {
        problem.show("Pick at least one event, or every event.");
        return;
      }
      await busy(form, async () => {
        try {
          const created = await ctx.api("POST", "/v1/webhooks", { json: { url: url.value.trim(), description: description.value || undefined, events, retryPolicy: retry.value() } });
          reveal(`Signing secret of ${created.url}`, created.secret);
          url.value = "";
          description.value = "";
          loadList();
        } catch (error) {
          problem.show(error);
        }
      });
    });
    return el("details", { className: "create", open: true }, el("summary", {}, "Endpoint, events and retries"), form);
  }

  // --- list ---------------------------------------------------------------------------
  function loadList() {
    return loading(listBox, async () => {
      const hooks = await ctx.api("GET", "/v1/webhooks");
      if (!hooks.length) return empty(canWrite ? "No webhooks yet. Create one above." : "No webhooks yet.");
      return hooks.map(card);
    });
  }

  function stateText(hook) {
    const failures = hook.consecutiveFailures;
    if (hook.enabled) return failures ? `Enabled · ${failures} ${failures === 1 ? "failure" : "failures"} in a row` : "Enabled";
    const why = { endpoint_gone: "the endpoint answered 410 Gone", consecutive_failures: "too many failures in a row" }[hook.disabledReason];
    return why ? `Disabled by sealbox: ${why} (${when(hook.disabledAt)})` : "Disabled";
  }

  function card(hook) {
    const problem = notice();
    const article = el("article", { className: "webhook card-inner", "data-id": hook.id, "aria-label": `Webhook ${hook.url}` });
    const deliveries = el("div", { className: "deliveries" });
    const tools = el("div", { className: "row-details" });
    article.append(
      el("h3", {}, el("code", {}, hook.url)),
      el("p", { hidden: !hook.description }, hook.description),
      el("dl", { className: "facts" },
        el("dt", {}, "State"), el("dd", { className: "hook-state" }, stateText(hook)),
        el("dt", {}, "Events"), el("dd", {}, hook.events.join(", ")),
        el("dt", {}, "Retries"), el("dd", {}, `${hook.retryPolicy.maxAttempts} attempts; disabled after ${hook.retryPolicy.disableAfterConsecutiveFailures} failures in a row`),
        hook.previousSecretExpiresAt ? el("dt", {}, "Previous secret") : null,
        hook.previousSecretExpiresAt ? el("dd", {}, `still signs until ${when(hook.previousSecretExpiresAt)}`) : null,
        el("dt", {}, "Created"), el("dd", {}, when(hook.createdAt))),
      problem);
    if (canWrite) {
      const buttons = el("div", { className: "actions" });
      const patch = async (change, done) => {
        try {
          await ctx.api("PATCH", `/v1/webhooks/${enc(hook.id)}`, { json: change });
          say(ctx, done);
          loadList();
        } catch (error) {
          problem.show(error);
        }
      };
      buttons.append(
        el("button", { type: "button", className: "toggle", onclick: () => patch({ enabled: !hook.enabled }, hook.enabled ? "Webhook disabled." : "Webhook enabled.") }, hook.enabled ? "Disable" : "Enable"),
        el("button", { type: "button", className: "send-test", onclick: () => openTool(testForm) }, "Send test"),
        el("button", { type: "button", className: "edit", onclick: () => openTool(editForm) }, "Edit"),
        el("button", { type: "button", className: "rotate", onclick: () => openTool(rotateForm) }, "Rotate secret"),
        el("button", {
          type: "button", className: "danger", onclick: async () => {
            if (!(await confirmAction(ctx, `Delete the webhook to ${hook.url}, with its delivery log?`))) return;
            try {
              await ctx.api("DELETE", `/v1/webhooks/${enc(hook.id)}`);
              say(ctx, "Webhook deleted.");
              loadList();
            } catch (error) {
              problem.show(error);
            }
          },
        }, "Delete"));
      article.append(buttons, tools);
    }
    article.append(el("h4", {}, "Deliveries"), deliveries);
    loadDeliveries(hook, deliveries, null, false);

    function openTool(build) {
      tools.replaceChildren(build());
      tools.querySelector("input, select, button")?.focus();
    }

    function testForm() {
      const type = el("select", { className: "test-type" }, ...catalog.map((k) => el("option", { value: k.type, selected: k.type === "ping" }, k.type)));
      const box = notice();
      const form = el("form", { className: "test-form" }, field("Event type", type, "Sent with the catalog's example data and X-Sealbox-Test-Delivery: true."), box, el("button", { type: "submit", className: "primary" }, "Send test delivery"));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        await busy(form, async () => {
          try {
            await ctx.api("POST", `/v1/webhooks/${enc(hook.id)}/test`, { json: { event_type: type.value } });
            box.show("Queued. It appears in the deliveries below.", "success");
            pollDeliveries();
          } catch (error) {
            box.show(error);
          }
        });
      });
      return form;
    }

    function editForm() {
      const url = el("input", { type: "url", required: true, value: hook.url });
      const description = el("input", { type: "text", maxlength: "500", value: hook.description });
      const picker = eventPicker(hook.events, uid("edit-event"));
      const retry = retryFields(hook.retryPolicy);
      const box = notice();
      const form = el("form", { className: "edit-form" }, field("Endpoint URL", url), field("Description", description), picker, retry, box, el("button", { type: "submit", className: "primary" }, "Save"));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        await busy(form, async () => {
          try {
            await ctx.api("PATCH", `/v1/webhooks/${enc(hook.id)}`, { json: { url: url.value.trim(), description: description.value, events: picker.selected(), retryPolicy: retry.value() } });
            say(ctx, "Webhook saved.");
            loadList();
          } catch (error) {
            box.show(error);
          }
        });
      });
      return form;
    }

    function rotateForm() {
      const grace = el("input", { type: "number", min: "0", max: "168", value: "24" });
      const box = notice();
      const form = el("form", { className: "rotate-form" }, field("Hours the previous secret keeps signing", grace, "Both signatures are sent meanwhile; 0 stops the old one now."), box, el("button", { type: "submit", className: "primary" }, "Rotate secret"));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        await busy(form, async () => {
          try {
            const rotated = await ctx.api("POST", `/v1/webhooks/${enc(hook.id)}/rotate-secret`, { json: { graceHours: Number(grace.value) } });
            reveal(`New signing secret of ${hook.url}`, rotated.secret);
            loadList();
          } catch (error) {
            box.show(error);
          }
        });
      });
      return form;
    }

    function pollDeliveries() {
      watch(hook, deliveries);
    }
    return article;
  }

  /** Reloads the log until no delivery is pending (the worker sends within moments). */
  function watch(hook, box) {
    let polls = 0;
    const again = () => {
      polls += 1;
      loadDeliveries(hook, box, null, false).then(() => {
        if (box.querySelector('tr[data-status="pending"]') && polls < 15) setTimeout(again, 1000);
      });
    };
    setTimeout(again, 300);
  }

  function loadDeliveries(hook, box, url, append) {
    const run = async () => {
      const response = await ctx.apiRaw("GET", url ?? `/v1/webhooks/${enc(hook.id)}/deliveries?limit=20`);
      const items = await response.json();
      const next = nextLink(response.headers.get("Link"));
      const problem = notice();
      const nodes = [];
      if (!items.length && !append) nodes.push(empty("No deliveries yet."));
      else {
        nodes.push(problem, table([
          { label: "Status", value: (d) => el("span", { className: "badge delivery-status", "data-status": d.status }, d.status) },
          { label: "Event", value: (d) => `${d.eventType}${d.isTest ? " (test)" : ""}${d.originalDeliveryId ? " (replay)" : ""}` },
          { label: "Attempts", value: (d) => String(d.attempts) },
          { label: "Response", value: (d) => (d.responseStatusCode ? `${d.responseStatusCode}${d.durationMs !== undefined ? ` in ${d.durationMs} ms` : ""}` : d.error ?? "—") },
          { label: "Body", value: (d) => (d.responseBody ? el("code", { className: "excerpt" }, d.responseBody.slice(0, 200)) : "—") },
          { label: "Next attempt", value: (d) => moment(d.nextAttemptAt) },
          { label: "Created", value: (d) => moment(d.createdAt) },
          {
            label: "", value: (d) => (canWrite ? el("button", {
              type: "button", className: "replay", "aria-label": `Replay delivery ${d.id}`, onclick: async () => {
                try {
                  await ctx.api("POST", `/v1/webhooks/${enc(hook.id)}/test`, { json: { action: "replay", deliveryId: d.id } });
                  say(ctx, "Replay queued.");
                  watch(hook, box);
                } catch (error) {
                  problem.show(error);
                }
              },
            }, "Replay") : null),
          },
        ], items, { caption: `Deliveries to ${hook.url}`, rowData: (d) => ({ status: d.status }) }));
      }
      const actions = el("div", { className: "actions" });
      if (!append) actions.append(el("button", { type: "button", className: "refresh", onclick: () => loadDeliveries(hook, box, null, false) }, "Refresh"));
      if (next) {
        const older = el("button", { type: "button", className: "older" }, "Older deliveries");
        older.addEventListener("click", () => {
          older.remove();
          const more = el("div");
          actions.before(more);
          loadDeliveries(hook, more, next, true);
        });
        actions.append(older);
      }
      nodes.push(actions);
      return nodes;
    };
    return loading(box, run);
  }

  loadList();
}
