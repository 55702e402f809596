// /app: the overview. Who is signed in, in which organization and with which role, and a
// card for each page the role opens (the same registry the navigation uses).

import { PAGES } from "../pages.js";
import { el, emptyState, pageHeader, section } from "../dom.js";

const BLURBS = {
  "/app/files": "Your encrypted files: upload, download, share.",
  "/app/secrets": "Secrets sealed with your key pair.",
  "/app/api-keys": "Keys for scripts and the CLI, with scopes.",
  "/app/webhooks": "Signed event deliveries to your endpoints.",
  "/app/organization": "Members, invites, roles, teams and settings.",
  "/app/audit": "Who did what, with a verifiable chain.",
  "/app/admin": "Every organization on this server, and its status.",
  "/app/account": "Profile, password, sessions and notifications.",
};

export async function render(root, ctx) {
  const org = ctx.org;
  const who = org
    ? `Signed in as ${ctx.me.displayName} (${ctx.me.email}), ${org.role} of ${org.name}.`
    : `Signed in as ${ctx.me.displayName} (${ctx.me.email}).`;
  const cards = PAGES.filter((p) => p.path !== "/app" && !p.hidden && p.allowed(ctx)).map((p) =>
    el("li", {}, el("a", { href: p.path, text: p.title }), el("p", { text: BLURBS[p.path] ?? "" })),
  );
  root.append(
    pageHeader("Overview", who),
    section("Where to go", cards.length ? el("ul", { class: "cards" }, cards) : emptyState("Your role opens no pages in this organization.")),
  );
}
