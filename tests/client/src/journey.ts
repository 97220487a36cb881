// The member journey through the TypeScript client generated from the gateway's OpenAPI document: no hand-written
// type, path or field name below that the document does not define — `tsc --strict` checks every call, parameter,
// body and field against `generated/api.ts` (openapi-typescript), and openapi-fetch sends the calls.
//
// Environment (tests/tests/typescript_client.rs sets it):
//   ID77_GATEWAY_URL      the gateway's base URL (http://127.0.0.1:<port>)
//   ID77_MEMBER_EMAIL     a member admin's email, ID77_MEMBER_PASSWORD its password
//   ID77_PROVIDER         a provider whose referral consumer accepts every referral (its offers get a quote)
//
// Each step prints `ok <step>`; the first failure prints `FAILED step: <step>` with the reason and exits 1.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";

import createClient from "openapi-fetch";

import type { components, operations, paths } from "../generated/api.js";

type Schemas = components["schemas"];
type Offer = Schemas["Offer"];
type Quote = Schemas["Quote"];
type Request = Schemas["Request"];

// The operations this journey relies on, by operationId: the build fails, naming it, if the document lacks one.
export type JourneyOperations = Pick<
  operations,
  "issueToken" | "getMe" | "searchOffers" | "submitRequest" | "getRequest" | "listQuotes" | "acceptQuote"
>;

function env(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") {
    console.error(`FAILED step: configuration\n${name} is not set`);
    process.exit(2);
  }
  return value;
}

const gateway = env("ID77_GATEWAY_URL");
const email = env("ID77_MEMBER_EMAIL");
const password = env("ID77_MEMBER_PASSWORD");
const provider = env("ID77_PROVIDER", "dir-routes");
/** How long to wait for what the platform does asynchronously (approval seen by requests, acceptance, quote). */
const PATIENCE_MS = Number(process.env["ID77_JOURNEY_PATIENCE_MS"] ?? "45000");

let passed = 0;

/** Runs one step of the journey: prints `ok <name>`, or `FAILED step: <name>` and the reason, and exits 1. */
async function step<T>(name: string, run: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    const value = await run();
    passed += 1;
    console.log(`ok ${name} (${Math.round(performance.now() - started)} ms)`);
    return value;
  } catch (error) {
    const reason = error instanceof Error ? (error.stack ?? error.message) : String(error);
    console.error(`FAILED step: ${name}\n${reason}`);
    process.exit(1);
  }
}

/** Polls `probe` every 200 ms until it returns a value; fails after PATIENCE_MS with the last thing seen. */
async function eventually<T>(what: string, probe: () => Promise<T | { pending: string }>): Promise<T> {
  const deadline = Date.now() + PATIENCE_MS;
  for (;;) {
    const outcome = await probe();
    if (!isPending(outcome)) {
      return outcome;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${PATIENCE_MS} ms waiting for ${what}; last: ${outcome.pending}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function isPending(value: unknown): value is { pending: string } {
  return typeof value === "object" && value !== null && "pending" in value && Object.keys(value).length === 1;
}

function show(status: number, body: unknown): string {
  return `${status} ${JSON.stringify(body)}`;
}

const anonymous = createClient<paths>({ baseUrl: gateway });

// 1. Sign in as the member admin.
const tokens = await step("sign in as a member admin (issueToken: POST /v1/auth/token)", async () => {
  const { data, error, response } = await anonymous.POST("/v1/auth/token", { body: { email, password } });
  assert.ok(data, `login refused: ${show(response.status, error)}`);
  assert.equal(response.status, 200);
  assert.equal(data.token_type, "Bearer");
  assert.ok(data.access_token.length > 20, "an access token");
  assert.ok(data.expires_in > 0 && data.refresh_expires_in > data.expires_in, "lifetimes in seconds");
  return data;
});

const api = createClient<paths>({
  baseUrl: gateway,
  headers: { Authorization: `${tokens.token_type} ${tokens.access_token}` },
});

const me = await step("who am I (getMe: GET /v1/me)", async () => {
  const { data, error, response } = await api.GET("/v1/me");
  assert.ok(data, show(response.status, error));
  assert.equal(data.user.email, email);
  assert.equal(data.user.role, "member_admin");
  assert.ok(data.user.member_id, "a member admin belongs to a member");
  return data;
});
const memberId: string = me.user.member_id ?? "";

// 2. Search the catalogue: the provider's flat-priced offers the member may ask for.
const offer: Offer = await step("search offers (searchOffers: GET /v1/offers)", async () => {
  const { data, error, response } = await api.GET("/v1/offers", {
    params: { query: { provider, price_kind: "flat", eligible: true, limit: 100 } },
  });
  assert.ok(data, show(response.status, error));
  assert.ok(data.items.length > 0, `no flat-priced offer of ${provider} for this member: ${JSON.stringify(data)}`);
  assert.ok(data.total >= data.items.length, "total counts every match");
  for (const item of data.items) {
    assert.equal(item.provider_code, provider);
    assert.equal(item.status, "published");
    assert.equal(item.price?.kind, "flat");
  }
  assert.equal(data.facets.provider?.[provider], data.total, "the provider facet counts the matches");
  const billed = data.items.find((item) => item.billed && item.price_cents > 0);
  assert.ok(billed, "a billed offer");
  assert.equal(billed.price?.amount_cents, billed.price_cents, "a flat price is known in advance");
  return billed;
});

// 3. Submit a request for it. Requests learns of the membership's approval by event: until then the submission
// answers 404/409, and the client retries with the same Idempotency-Key.
const subject = "Diagnostic demandé par le client TypeScript";
const idempotencyKey = `ts-client-${randomUUID()}`;
const request: Request = await step("submit a request (submitRequest: POST /v1/requests)", async () => {
  const submitted = await eventually("the submission to be accepted", async () => {
    const { data, error, response } = await api.POST("/v1/requests", {
      params: { header: { "Idempotency-Key": idempotencyKey } },
      body: { offer_id: offer.id, subject, description: "Parcours du membre par le client généré depuis l'OpenAPI." },
    });
    if (response.status === 404 || response.status === 409) {
      return { pending: show(response.status, error) };
    }
    assert.ok(data, show(response.status, error));
    assert.equal(response.status, 201);
    assert.equal(response.headers.get("Idempotency-Replayed"), null, "filed by this call: not a replay");
    return data;
  });
  assert.equal(submitted.member_id, memberId);
  assert.equal(submitted.offer_id, offer.id);
  assert.equal(submitted.subject, subject);
  assert.equal(submitted.kind, "offer");
  assert.equal(submitted.offer_category, offer.category);
  assert.equal(submitted.history[0]?.status, "submitted");
  // The same call again (a retry after a lost answer): the same request, marked as a replay.
  const again = await api.POST("/v1/requests", {
    params: { header: { "Idempotency-Key": idempotencyKey } },
    body: { offer_id: offer.id, subject, description: "Parcours du membre par le client généré depuis l'OpenAPI." },
  });
  assert.equal(again.response.status, 201, show(again.response.status, again.error));
  assert.equal(again.data?.id, submitted.id, "same Idempotency-Key, same request");
  assert.equal(again.response.headers.get("Idempotency-Replayed"), "true", "a replay says so");
  return submitted;
});

// 4. The provider's consumer accepts it.
const accepted: Request = await step("the provider accepts it (getRequest: GET /v1/requests/{id})", async () => {
  const current = await eventually("the request to be accepted", async () => {
    const { data, error, response } = await api.GET("/v1/requests/{id}", { params: { path: { id: request.id } } });
    assert.ok(data, show(response.status, error));
    return data.status === "accepted" ? data : { pending: `status ${data.status}` };
  });
  assert.equal(current.id, request.id);
  assert.equal(current.provider_code, provider);
  assert.equal(current.history.at(-1)?.status, "accepted");
  assert.ok(current.first_answered_at, "the provider's first answer is dated");
  return current;
});

// 5. Its quote: proposed to the member at the offer's flat price.
const quote: Quote = await step("read its quote (listQuotes: GET /v1/quotes?request_id=…)", async () => {
  const found = await eventually("the request's quote", async () => {
    const { data, error, response } = await api.GET("/v1/quotes", {
      params: { query: { request_id: accepted.id } },
    });
    assert.ok(data, show(response.status, error));
    return data.items[0] ?? { pending: "no quote yet" };
  });
  assert.equal(found.request_id, accepted.id);
  assert.equal(found.member_id, memberId);
  assert.equal(found.offer_id, offer.id);
  assert.equal(found.issuer_code, provider);
  assert.equal(found.amount_cents, offer.price_cents, "the offer's flat price");
  assert.equal(found.amount_to_be_stated, false);
  assert.equal(found.currency, "EUR");
  assert.equal(found.status, "proposed");
  assert.match(found.number, new RegExp(`^D-${provider}-${found.year}-\\d{6}$`));
  assert.ok(found.expires_at && Date.parse(found.expires_at) > Date.now(), "a proposed quote expires later");
  return found;
});

// 6. The member admin agrees to it.
await step("accept the quote (acceptQuote: POST /v1/quotes/{id}/accept)", async () => {
  const { data, error, response } = await api.POST("/v1/quotes/{id}/accept", {
    params: { path: { id: quote.id } },
    body: { signatory_name: "Le maire", purchase_order_number: "EJ-TS-0001" },
  });
  assert.ok(data, show(response.status, error));
  assert.equal(data.id, quote.id);
  assert.equal(data.status, "accepted");
  assert.equal(data.signatory_name, "Le maire");
  assert.equal(data.purchase_order_number, "EJ-TS-0001");
  assert.equal(data.amount_cents, quote.amount_cents);
  assert.ok(data.decided_at, "the decision is dated");
});

console.log(`journey: ${passed} steps passed (request ${request.id}, quote ${quote.number})`);
