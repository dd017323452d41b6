// The graphql-http package's GraphQL over HTTP server audit against a running
// server, anonymous and with a customer token (API.md: nothing found at MUST or
// SHOULD). Exits non-zero on any result that is not ok: an error, a warning or a
// notice.
//
//   SCOVILLE_URL  the server, e.g. http://127.0.0.1:8080
//   DEVIDP_URL    the development identity provider, for the customer's token
import { auditServer, type AuditResult } from "graphql-http";

const server = (process.env.SCOVILLE_URL ?? "").replace(/\/$/, "");
const idp = (process.env.DEVIDP_URL ?? "").replace(/\/$/, "");
if (!server || !idp) {
  process.stderr.write("audit: set SCOVILLE_URL and DEVIDP_URL\n");
  process.exit(2);
}

async function customerToken(): Promise<string> {
  const form = new URLSearchParams({ sub: "clients-audit-customer", email: "clients-audit@example.com", name: "Audit Customer" });
  const res = await fetch(`${idp}/token`, { method: "POST", body: form, signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { access_token?: string };
  if (!res.ok || !body.access_token) throw new Error(`the issuer answered HTTP ${res.status} without a token`);
  return body.access_token;
}

async function audit(who: string, token?: string): Promise<number> {
  const fetchFn: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    if (token) headers.set("Authorization", `Bearer ${token}`);
    return fetch(input, { ...init, headers });
  };
  const results: AuditResult[] = await auditServer({ url: `${server}/graphql`, fetchFn });
  let bad = 0;
  for (const r of results) {
    if (r.status === "ok") continue;
    bad++;
    process.stderr.write(`audit (${who}): ${r.status.toUpperCase()} ${r.name}: ${r.reason}\n`);
  }
  process.stderr.write(`audit (${who}): ${results.length - bad} of ${results.length} ok\n`);
  return bad;
}

async function main(): Promise<void> {
  const bad = (await audit("anonymous")) + (await audit("customer", await customerToken()));
  process.exit(bad === 0 ? 0 : 1);
}

main().catch((err: unknown) => {
  process.stderr.write(`audit: FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
