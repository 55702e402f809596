// /app/billing: the organization's plan (GET /v1/subscriptions/{id}): its limits beside
// what is used of them today, its features, and when it ends; the plans a checkout can buy
// here (the subscription's `offers`, one per configured payment processor and price), each
// starting the processor's hosted checkout; and the invoices the processors reported
// (GET /v1/billing/{id}/invoices, paged through `Link`). Owners and roles with
// billing:read see the page; starting a checkout needs billing:manage. Without a payment
// processor, plans are assigned by an instance admin (docs/billing.md), and the page says so.

import { badge, el, emptyState, errorState, fill, formatBytes, formatDate, loadingState, nextLink, pageHeader, section, table } from "../dom.js";

const FEATURES = {
  api_access: "API access with API keys",
  e2e_transfers: "End-to-end encrypted transfers",
  sso: "Sign-in with identity providers",
  conversions: "File conversions",
};

export async function render(root, ctx) {
  const org = ctx.org;
  root.append(pageHeader("Plan and billing", `What ${org.name} may use, and how it pays for it.`));
  const parts = { plan: section("Plan"), change: section("Change plan"), invoices: section("Invoices") };
  for (const [key, part] of Object.entries(parts)) {
    part.id = `billing-${key}`;
    part.append(loadingState());
    root.append(part);
  }
  const checkedOut = new URLSearchParams(location.search).get("checkout") === "done";
  let subscription;
  try {
    subscription = await ctx.api("GET", `/v1/subscriptions/${org.id}`);
  } catch (error) {
    fill(parts.plan, parts.plan.querySelector("h2"), errorState(error));
    parts.change.remove();
    parts.invoices.remove();
    return;
  }
  drawPlan(parts.plan, subscription, checkedOut);
  drawChange(parts.change, ctx, subscription);
  await drawInvoices(parts.invoices, ctx);
}

function drawPlan(box, sub, checkedOut) {
  const heading = box.querySelector("h2");
  const status = { active: "Assigned", default: "The default plan", unlimited: "No plans on this instance: nothing is limited" }[sub.status] ?? sub.status;
  const facts = el(
    "dl",
    { class: "facts", id: "plan-facts" },
    el("dt", { text: "Plan" }),
    el("dd", { id: "plan-name" }, `${sub.planName} `, badge(sub.plan, "active")),
    el("dt", { text: "Status" }),
    el("dd", { id: "plan-status", text: status }),
    el("dt", { text: "Ends" }),
    el("dd", { id: "plan-ends", text: sub.endsAt ? `${formatDate(sub.endsAt)}, then the default plan applies` : "Does not end" }),
  );
  const u = sub.usage;
  const l = sub.limits;
  const rows = [
    { what: "Storage", used: u.storageBytes, limit: l.storageBytes, bytes: true },
    { what: "Largest file", used: null, limit: l.maxFileBytes, bytes: true },
    { what: "Active members", used: u.members, limit: l.members },
    { what: "Webhooks", used: u.webhooks, limit: l.webhooks },
    { what: "Transfers today", used: u.transfersToday, limit: l.transfersPerDay },
    { what: "Conversions a day", used: null, limit: l.conversionsPerDay },
    { what: "API requests today, all keys", used: u.apiRequestsToday, limit: l.apiRequestsPerDayPerOrg },
    { what: "API requests today, per key", used: null, limit: l.apiRequestsPerDayPerKey },
  ];
  const amount = (n, bytes) => (n == null ? "" : bytes ? formatBytes(n) : n.toLocaleString());
  const usage = table(
    [
      { label: "Limit", value: (r) => r.what },
      { label: "Used", value: (r) => (r.used == null ? "—" : amount(r.used, r.bytes)) },
      { label: "Allowed", value: (r) => (r.limit == null ? "No limit" : amount(r.limit, r.bytes)) },
      {
        label: "Share",
        value: (r) =>
          r.used == null || r.limit == null
            ? "—"
            : el("meter", { min: "0", max: String(r.limit), value: String(Math.min(r.used, r.limit)), high: String(r.limit * 0.9), "aria-label": `${r.what}: ${amount(r.used, r.bytes)} of ${amount(r.limit, r.bytes)}` }),
      },
    ],
    rows,
    { caption: `Daily counts are of ${u.day} (UTC) and start again ${formatDate(u.resetsAt)}.`, rowKey: (r) => r.what },
  );
  usage.id = "plan-usage";
  const features = Object.entries(FEATURES).map(([key, label]) =>
    el("li", { dataset: { feature: key } }, sub.features.includes(key) ? badge("included", "active") : badge("not included", "none"), ` ${label}`),
  );
  fill(
    box,
    heading,
    checkedOut ? el("p", { class: "notice", role: "status", id: "checkout-returned", text: "Back from the checkout. The plan changes once the payment processor confirms the payment, which can take a minute: reload this page to see it." }) : null,
    facts,
    usage,
    el("h3", { text: "Features" }),
    el("ul", { class: "plain", id: "plan-features" }, features),
  );
}

function drawChange(box, ctx, sub) {
  const heading = box.querySelector("h2");
  if (sub.status === "unlimited") {
    fill(box, heading, emptyState("This instance has no plans: there is nothing to change."));
    return;
  }
  if (sub.offers.length === 0) {
    fill(box, heading, emptyState("No payment processor sells plans on this instance. An instance admin assigns plans (the admin console, or sealbox admin set-plan)."));
    return;
  }
  if (!ctx.can("billing:manage")) {
    fill(box, heading, el("p", { class: "hint needs", text: "Buying a plan needs the billing:manage permission, which your role does not have." }));
    return;
  }
  const buy = async (offer, button) => {
    button.disabled = true;
    try {
      const successUrl = `${location.origin}/app/billing?checkout=done`;
      const created = await ctx.api("POST", `/v1/subscriptions/${ctx.org.id}/checkout`, { json: { plan: offer.plan, provider: offer.provider, successUrl } });
      // The processor's hosted page: a navigation away, not a request of this page.
      location.assign(created.checkoutUrl);
    } catch (error) {
      ctx.toast(error.message, "error");
      button.disabled = false;
    }
  };
  const offers = table(
    [
      { label: "Plan", value: (o) => `${o.planName}${o.plan === sub.plan ? " (current)" : ""}` },
      { label: "Through", value: (o) => processorName(o.provider) },
      { label: "Price", value: (o) => offerPrice(o) },
      {
        label: "",
        value: (o) => {
          const button = el("button", { type: "button", class: "primary", text: `Buy ${o.planName}`, "aria-label": `Buy ${o.planName} with ${processorName(o.provider)}` });
          button.addEventListener("click", () => buy(o, button));
          return button;
        },
      },
    ],
    sub.offers,
    { rowKey: (o) => `${o.plan}:${o.provider}` },
  );
  offers.id = "plan-offers";
  fill(box, heading, el("p", { class: "hint", text: "A checkout opens the payment processor's page. The plan changes when it confirms the payment." }), offers);
}

async function drawInvoices(box, ctx) {
  const heading = box.querySelector("h2");
  const list = el("div", { id: "invoice-list" });
  const more = el("div", { class: "pager" });
  let next = `/v1/billing/${ctx.org.id}/invoices?limit=20`;
  let seen = 0;
  const load = async () => {
    const response = await ctx.apiRaw("GET", next);
    const page = await response.json();
    next = nextLink(response);
    seen += page.length;
    list.append(
      table(
        [
          { label: "Date", value: (i) => formatDate(i.createdAt) },
          { label: "Plan", value: (i) => i.plan ?? "—" },
          { label: "Status", value: (i) => badge(i.status, i.status === "paid" ? "active" : "disabled") },
          { label: "Amount", value: (i) => (i.amount == null ? "—" : money(i.amount, i.currency)) },
          { label: "Through", value: (i) => processorName(i.provider) },
          { label: "Invoice", value: (i) => (i.url ? el("a", { href: i.url, rel: "noopener noreferrer", target: "_blank", text: i.providerInvoiceId }) : i.providerInvoiceId) },
        ],
        page,
        { rowKey: (i) => i.id },
      ),
    );
    fill(more, next ? el("button", { type: "button", id: "invoices-older", text: "Show older", onclick: () => load().catch((e) => ctx.toast(e.message, "error")) }) : null);
  };
  try {
    await load();
  } catch (error) {
    fill(box, heading, errorState(error));
    return;
  }
  fill(box, heading, seen === 0 ? emptyState("No invoices yet.") : list, more);
}

function processorName(provider) {
  return { stripe: "Stripe", paystack: "Paystack", flutterwave: "Flutterwave" }[provider] ?? provider;
}

/** An offer's price as configured: Paystack's amount is in the currency's subunit,
 *  Flutterwave's in its unit; Stripe's lives in the Stripe price. */
function offerPrice(offer) {
  if (!offer.amount) return "Set in the processor";
  const n = Number(offer.amount);
  if (!Number.isFinite(n) || !offer.currency) return `${offer.amount} ${offer.currency ?? ""}`.trim();
  return offer.provider === "paystack" ? money(n, offer.currency) : money(n * 10 ** minorDigits(offer.currency), offer.currency);
}

/** `minor` units of `currency` (cents, kobo) as the reader's locale writes money. */
function money(minor, currency) {
  if (!currency) return String(minor);
  try {
    const digits = minorDigits(currency);
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(minor / 10 ** digits);
  } catch {
    return `${minor} ${currency}`;
  }
}

function minorDigits(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}
