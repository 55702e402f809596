// A real OpenID provider (the `oidc-provider` package, pinned in package.json) on
// 127.0.0.1 and a free port, for sealbox's sign-in tests (tests/it/sso.rs).
//
// It prints one JSON line, {"issuer": "http://127.0.0.1:PORT"}, then reads one JSON line
// from stdin: {"clients": [...oidc-provider client metadata], "accounts": {"<login>":
// {claims}}} (the test only knows the redirect URI once sealbox has its port), builds the
// provider and prints "ready". People sign in on its development login page with any
// login and password: the login names the account, whose claims come from "accounts".
//
// To exercise sealbox's checks with tokens a correct provider would never issue, the test
// can ask for the next token response to be tampered with: POST /__test/tamper with
// {"idToken": {"aud": "other", "exp": 0, "nonce": "x", "iss": "..."}} re-signs the next ID
// token with the provider's own key and those claims changed; {"replayCode": true} sends
// the next authorization response with the previous, already redeemed code instead of
// the new one.

import http from "node:http";
import readline from "node:readline";
import { generateKeyPair, exportJWK, SignJWT, decodeJwt, decodeProtectedHeader } from "jose";
import Provider from "oidc-provider";

const server = http.createServer();
let handler = (_req, res) => {
  res.statusCode = 503;
  res.end();
};
let tamper = {};
let lastCode = null;
let signingKey = null;

server.on("request", (req, res) => {
  if (req.method === "POST" && req.url === "/__test/tamper") {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      tamper = JSON.parse(body || "{}");
      res.statusCode = 204;
      res.end();
    });
    return;
  }
  handler(req, res);
});

server.listen(0, "127.0.0.1", async () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  process.stdout.write(JSON.stringify({ issuer }) + "\n");
  const lines = readline.createInterface({ input: process.stdin });
  const setup = JSON.parse(await new Promise((resolve) => lines.once("line", resolve)));

  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: "test-key", alg: "RS256", use: "sig" };
  signingKey = privateKey;
  const accounts = setup.accounts ?? {};

  const provider = new Provider(issuer, {
    clients: setup.clients,
    jwks: { keys: [jwk] },
    claims: {
      openid: ["sub"],
      email: ["email", "email_verified"],
      profile: ["name"],
      groups: ["groups"],
    },
    // Claims in the ID token itself, as Authentik and Keycloak put them there.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, id) {
      const claims = accounts[id];
      if (!claims) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...claims }; } };
    },
  });
  provider.proxy = false;

  provider.use(async (ctx, next) => {
    await next();
    // The authorization response: remember its code, or swap in the last one.
    const location = ctx.response.get("location");
    const url = location && location.startsWith("http") ? new URL(location) : null;
    if (url && url.searchParams.has("code") && url.searchParams.has("state")) {
      const code = url.searchParams.get("code");
      if (tamper.replayCode && lastCode) {
        url.searchParams.set("code", lastCode);
        ctx.redirect(url.href);
        tamper = {};
      } else {
        lastCode = code;
      }
    }
    if (ctx.path === "/token" && ctx.body && ctx.body.id_token && tamper.idToken) {
      const original = decodeJwt(ctx.body.id_token);
      const header = decodeProtectedHeader(ctx.body.id_token);
      const claims = { ...original, ...tamper.idToken };
      ctx.body = {
        ...ctx.body,
        id_token: await new SignJWT(claims).setProtectedHeader(header).sign(signingKey),
      };
      tamper = {};
    }
  });

  handler = provider.callback();
  process.stdout.write("ready\n");
});
