// The storefront's first purchase, end to end against a running server, as CI runs
// it (scripts/clients-check.sh): a token from the development issuer, the plans,
// createSubscription (Stripe's Payment Element flow), the subscription followed
// over graphql-ws, and, playing Stripe's part, the signed events of the first
// payment posted to /webhooks/stripe: invoice.paid and customer.subscription.updated
// (status active), as Stripe sends them when the first invoice is paid (the
// subscription's status comes only from Stripe's subscription; the invoice
// records the payment). Exits 0 once a push after those events shows the
// subscription ACTIVE with its payment SUCCEEDED; non-zero when none comes within
// EXAMPLE_TIMEOUT_MS or anything fails. (stripe-mock answers every created
// subscription as active already; against Stripe's test mode it starts
// INCOMPLETE and the same events make it ACTIVE.)
//
//   SCOVILLE_URL           the server, e.g. http://127.0.0.1:8080
//   DEVIDP_URL             the development identity provider (bin/scoville devidp)
//   STRIPE_WEBHOOK_SECRET  the server's endpoint signing secret
//   STRIPE_API_BASE        stripe-mock, where the created subscription is read back
//   STRIPE_SECRET_KEY      its key (default sk_test_123)
import { createHmac, randomUUID } from "node:crypto";
import { CreateSubscriptionDocument, MeDocument, PlansDocument, SubscriptionUpdatedDocument } from "../gql/graphql.js";
import { Scoville } from "./client.js";

function env(name: string, fallback?: string): string {
  const v = process.env[name] ?? fallback;
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

const server = env("SCOVILLE_URL").replace(/\/$/, "");
const idp = env("DEVIDP_URL").replace(/\/$/, "");
const webhookSecret = env("STRIPE_WEBHOOK_SECRET");
const stripeBase = env("STRIPE_API_BASE").replace(/\/$/, "");
const stripeKey = env("STRIPE_SECRET_KEY", "sk_test_123");
const timeoutMs = Number(env("EXAMPLE_TIMEOUT_MS", "30000"));
// The Stripe API version the server's stripe-go speaks (events of another are refused).
const stripeAPIVersion = "2023-10-16";

function log(msg: string): void {
  process.stderr.write(`example: ${msg}\n`);
}

/** An access token from the development issuer (what a sign-in gives a storefront). */
async function signIn(sub: string, roles?: string): Promise<string> {
  const form = new URLSearchParams({ sub, email: `${sub}@example.com`, name: "Example Customer" });
  if (roles) form.set("roles", roles);
  const res = await fetch(`${idp}/token`, { method: "POST", body: form, signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { access_token?: string };
  if (!res.ok || !body.access_token) throw new Error(`the issuer answered HTTP ${res.status} without a token`);
  return body.access_token;
}

/** Stripe's Stripe-Signature header: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">. */
function stripeSignature(body: string, secret: string, t: number): string {
  return `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${body}`).digest("hex")}`;
}

async function deliver(type: string, object: Record<string, unknown>, created: number): Promise<void> {
  const body = JSON.stringify({
    id: `evt_example_${randomUUID().replaceAll("-", "")}`, object: "event", api_version: stripeAPIVersion,
    created, livemode: false, pending_webhooks: 1, type, data: { object },
    request: { id: null, idempotency_key: null },
  });
  const now = Math.floor(Date.now() / 1000);
  const res = await fetch(`${server}/webhooks/stripe`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Stripe-Signature": stripeSignature(body, webhookSecret, now) },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 200) throw new Error(`/webhooks/stripe answered ${type} with HTTP ${res.status}`);
  log(`delivered a signed ${type}`);
}

interface StripeSubscription {
  id: string;
  customer: string;
  items: { data: { price: { id: string; unit_amount: number; currency: string } }[] };
}

/** Reads the subscription back from Stripe (stripe-mock), as Stripe itself knows it. */
async function stripeSubscription(id: string): Promise<StripeSubscription> {
  const res = await fetch(`${stripeBase}/v1/subscriptions/${encodeURIComponent(id)}`, {
    headers: { Authorization: `Bearer ${stripeKey}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`Stripe answered HTTP ${res.status} for the subscription`);
  return (await res.json()) as StripeSubscription;
}

/** Plays Stripe after the first payment: the subscription turns active, the invoice is paid. */
async function payFirstInvoice(providerSubscriptionId: string, ourId: string, amount: number, currency: string): Promise<void> {
  const s = await stripeSubscription(providerSubscriptionId);
  const price = s.items.data[0]?.price;
  if (!price) throw new Error("Stripe's subscription has no item");
  const start = Math.floor(Date.now() / 1000) - 60;
  const end = start + 30 * 24 * 3600;
  const cur = currency.toLowerCase();
  const stripePrice = { id: price.id, object: "price", unit_amount: amount, currency: cur, type: "recurring", recurring: { interval: "month", interval_count: 1 } };
  const invoiceId = `in_example_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const line = {
    id: `il_${invoiceId}`, object: "line_item", type: "subscription", amount, amount_excluding_tax: amount, currency: cur,
    description: `1 × ${price.id}`, discountable: true, discount_amounts: [], discounts: [], quantity: 1, proration: false,
    subscription: providerSubscriptionId, subscription_item: `si_${providerSubscriptionId}`, price: stripePrice,
    period: { start, end },
  };
  await deliver("invoice.paid", {
    id: invoiceId, object: "invoice", customer: s.customer, subscription: providerSubscriptionId, status: "paid", paid: true,
    billing_reason: "subscription_create", currency: cur, amount_due: amount, amount_paid: amount, amount_remaining: 0,
    total: amount, subtotal: amount, total_excluding_tax: amount, subtotal_excluding_tax: amount, tax: null,
    total_tax_amounts: [], discounts: [], total_discount_amounts: [], starting_balance: 0, ending_balance: 0, amount_shipping: 0,
    attempt_count: 1, next_payment_attempt: null, payment_intent: `pi_${invoiceId}`, charge: `ch_${invoiceId}`,
    hosted_invoice_url: `https://invoice.stripe.com/i/${invoiceId}`, status_transitions: { paid_at: start, finalized_at: start },
    created: start, livemode: false, metadata: {},
    lines: { object: "list", has_more: false, url: `/v1/invoices/${invoiceId}/lines`, data: [line] },
  }, start + 1);
  await deliver("customer.subscription.updated", {
    id: providerSubscriptionId, object: "subscription", customer: s.customer, status: "active", cancel_at_period_end: false,
    pause_collection: null, current_period_start: start, current_period_end: end, created: start, currency: cur,
    metadata: { scoville_subscription_id: ourId }, livemode: false,
    items: { object: "list", has_more: false, url: `/v1/subscription_items?subscription=${providerSubscriptionId}`,
      data: [{ id: `si_${providerSubscriptionId}`, object: "subscription_item", quantity: 1, subscription: providerSubscriptionId, price: stripePrice }] },
  }, start + 2);
}

async function main(): Promise<void> {
  const anonymous = new Scoville(`${server}/graphql`);
  const { plans } = await anonymous.execute(PlansDocument, {});
  const plan = plans[0];
  if (!plan) throw new Error("the catalog is empty (was the database seeded?)");
  log(`${plans.length} plans; subscribing to ${plan.name} (${plan.price.amount} ${plan.price.currency} per ${plan.interval.toLowerCase()})`);

  const subject = `clients-example-${randomUUID()}`;
  const customer = new Scoville(`${server}/graphql`, await signIn(subject));
  const { me } = await customer.execute(MeDocument, {});
  if (!me) throw new Error("me is null for a signed-in customer");

  const { createSubscription } = await customer.execute(CreateSubscriptionDocument, {
    input: {
      planId: plan.id,
      shippingAddress: { name: "Example Customer", line1: "1 Pepper Lane", city: "Portland", postalCode: "97201", region: "OR", country: "US" },
      idempotencyKey: randomUUID(),
    },
  });
  if (createSubscription.userErrors.length) {
    throw new Error(`createSubscription: ${createSubscription.userErrors.map((e) => e.code).join(", ")}`);
  }
  const created = createSubscription.subscription;
  if (!created) throw new Error("createSubscription returned no subscription");
  log(`created subscription, status ${created.status}; clientSecret ${createSubscription.clientSecret ? "present" : "absent"}`);

  // Staff read the provider's id (a field customers may not see); here the example
  // plays Stripe, which knows it anyway.
  const support = new Scoville(`${server}/graphql`, await signIn(`clients-example-support-${randomUUID()}`, "support"));
  const providerId = await providerSubscriptionId(support, created.id);

  const live = customer.live();
  let stop = (): void => {};
  const sawActive = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no push showing ACTIVE with the payment SUCCEEDED within ${timeoutMs} ms`)), timeoutMs);
    let first = true;
    stop = customer.follow(live, SubscriptionUpdatedDocument, { id: created.id }, (data) => {
      const s = data.subscriptionUpdated;
      const payment = s.payments.edges[0]?.node;
      log(`push: status ${s.status}, payment ${payment ? payment.status : "none"}`);
      if (first) {
        // The current state: nothing paid yet. Now the first payment happens at "Stripe".
        first = false;
        if (payment) {
          reject(new Error("a payment before any was made"));
          return;
        }
        payFirstInvoice(providerId, created.id, plan.price.amount, plan.price.currency).catch(reject);
        return;
      }
      // Done when a push after the signed events shows the subscription ACTIVE with
      // its first payment: what the storefront's "thank you" page waits for.
      if (s.status === "ACTIVE" && payment?.status === "SUCCEEDED") {
        clearTimeout(timer);
        resolve();
      }
    }, (err) => {
      clearTimeout(timer);
      reject(err instanceof Error ? err : new Error("the live socket failed"));
    });
  });
  try {
    await sawActive;
    log("the subscription is ACTIVE");
  } finally {
    stop();
    await live.dispose();
  }
}

async function providerSubscriptionId(staff: Scoville, id: string): Promise<string> {
  // An ad-hoc staff query: persisted-documents mode lets SUPPORT and ADMIN send any document.
  const res = await fetch(staff.url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${staff.token}` },
    body: JSON.stringify({ query: "query ($id: ID!) { subscription(id: $id) { providerSubscriptionId } }", variables: { id } }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as { data?: { subscription?: { providerSubscriptionId?: string | null } | null } };
  const pid = body.data?.subscription?.providerSubscriptionId;
  if (!pid) throw new Error("staff could not read the subscription's provider id");
  return pid;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
