"""The journey through the gateway's REST API, as tests/tests/journey.rs does it: the coordinator approves a real
commune of Seine-et-Marne (Meaux, SIREN 217702844, from the directory membership imported) and invites its admin,
who submits a request for a billed offer; the referral is accepted (by the provider's hosted referral consumer
through its HTTPS endpoint when the chart runs one for a provider, else by the provider's agent through the API);
the quote appears `proposed`."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

SIREN = "217702844"
USER_PASSWORD = "Mot2passe-Solide!"


class JourneyError(Exception):
    pass


class Api:
    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, token: str | None = None, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            request.add_header(k, v)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                text = response.read()
                return response.status, (json.loads(text) if text else {})
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, {"body": text.decode(errors="replace")[:300]}

    def expect(self, status: int, method: str, path: str, token=None, body=None, headers=None):
        got, answer = self.call(method, path, token, body, headers)
        if got != status:
            raise JourneyError(f"{method} {path}: expected {status}, got {got} {json.dumps(answer)[:400]}")
        return answer

    def token(self, email: str, password: str) -> str:
        return self.expect(200, "POST", "/v1/auth/token", body={"email": email, "password": password})["access_token"]


def eventually(what: str, limit: float, probe):
    deadline = time.monotonic() + limit
    last = None
    while time.monotonic() < deadline:
        value, last = probe()
        if value is not None:
            return value
        time.sleep(0.3)
    raise JourneyError(f"timed out after {limit:.0f} s waiting for {what} (last: {json.dumps(last)[:400]})")


def run(base: str, demo_password: str, hosted: str | None, endpoint) -> str:
    """Runs the journey; returns its one-line result."""
    api = Api(base)
    found = api.expect(200, "GET", "/v1/collectivities?q=meaux&kind=commune")
    if not any(c.get("siren") == SIREN for c in found.get("items", [])):
        raise JourneyError(f"Meaux ({SIREN}) is not in the directory membership imported: {json.dumps(found)[:300]}")
    coordinator = api.token("coordination@id77.demo", demo_password)
    member = api.expect(201, "POST", "/v1/memberships",
                        body={"siren": SIREN, "contact_name": "Secrétariat général", "contact_email": "dgs@meaux.fr"})
    approved = api.expect(200, "POST", f"/v1/memberships/{member['id']}/approve", coordinator, {})
    if approved.get("status") != "active":
        raise JourneyError(f"approval: {approved}")
    invitation = api.expect(201, "POST", "/v1/users", coordinator,
                            {"email": "dgs@meaux.fr", "display_name": "DGS de Meaux", "role": "member_admin",
                             "member_id": member["id"]})
    admin = api.expect(200, "POST", "/v1/auth/invitations/accept",
                       body={"invitation_token": invitation["invitation_token"], "password": USER_PASSWORD})
    admin = admin["access_token"]

    if hosted:
        provider = hosted
        offer = _hosted_offer(api, demo_password, provider)
    else:
        offers = api.expect(200, "GET", "/v1/offers?category=integrated_engineering&limit=100")
        offer = next((o for o in offers.get("items", []) if o.get("billed") is True), None)
        if offer is None:
            raise JourneyError("no billed integrated engineering offer in the catalogue")
        provider = offer["provider_code"]

    body = {"offer_id": offer["id"], "subject": "Réfection de la voirie du centre-ville",
            "description": "Diagnostic et programme de travaux (chart-run)."}

    def submit():
        status, answer = api.call("POST", "/v1/requests", admin, body, {"Idempotency-Key": "chart-run-1"})
        if status == 201:
            return answer, answer
        if status in (404, 409):
            return None, answer
        raise JourneyError(f"POST /v1/requests: {status} {answer}")

    request = eventually("the submission to be accepted", 30, submit)
    request_id = request["id"]
    by = f"hosted consumer of {provider} (HTTPS endpoint)"
    if not hosted:
        agent = api.token(f"agent.{provider}@id77.demo", demo_password)

        def accept():
            page = api.call("GET", f"/v1/referrals?request_id={request_id}", agent)[1]
            items = page.get("items") or []
            if not items:
                return None, page
            status, answer = api.call("POST", f"/v1/referrals/{items[0]['id']}/accept", agent, {})
            return (answer if status == 200 else None), answer

        eventually("the provider's agent to accept the referral", 30, accept)
        by = f"agent.{provider}@id77.demo through the API"

    def accepted():
        status, answer = api.call("GET", f"/v1/requests/{request_id}", admin)
        return (answer if status == 200 and answer.get("status") == "accepted" else None), answer

    eventually("the request to become accepted", 45, accepted)
    if hosted and endpoint is not None:
        if not any(m.get("request_id") == request_id for m in endpoint.received):
            raise JourneyError(f"the request was accepted, but {provider}'s endpoint never received its referral")
        if endpoint.errors:
            raise JourneyError(f"the provider's endpoint refused: {endpoint.errors[:2]}")

    def proposed():
        page = api.call("GET", f"/v1/quotes?request_id={request_id}", admin)[1]
        q = next((q for q in page.get("items") or [] if q.get("status") == "proposed"), None)
        return q, page

    quote = eventually("a proposed quote", 45, proposed)
    amount = quote.get("amount_cents", 0)
    return (f"request {request_id} submitted by Meaux → referral accepted by {by} → quote {quote.get('number')} "
            f"{quote.get('status')}, {amount // 100},{amount % 100:02d} EUR excl. VAT")


def _hosted_offer(api: Api, demo_password: str, provider: str) -> dict:
    """A billed offer of the hosted provider: the catalogue's own, else one the operator adds (the chart's values
    name a provider the seed catalogue does not have)."""
    offers = api.expect(200, "GET", "/v1/offers?limit=100")
    offer = next((o for o in offers.get("items", []) if o.get("provider_code") == provider and o.get("billed")), None)
    if offer:
        return offer
    operator = api.token("operateur@id77.demo", demo_password)
    providers = api.expect(200, "GET", "/v1/providers", operator)
    items = providers.get("items", providers if isinstance(providers, list) else [])
    if not any(p.get("code") == provider for p in items):
        api.expect(201, "POST", "/v1/providers", operator,
                   # A departmental directorate (values-production.yaml's dr77, the roads directorate): it bills as
                   # the Département, whose legal identity the production values give billing.
                   {"code": provider, "name": f"Direction {provider} (chart-run)", "kind": "departmental_service",
                    "contact_email": f"contact@{provider}.example.fr"})
    created = api.expect(201, "POST", "/v1/offers", operator,
                         {"code": f"chart-run-{provider}", "title": "Étude de voirie (chart-run)",
                          "summary": "Offre créée par tests/helm/run_chart.py", "category": "integrated_engineering",
                          "provider_code": provider, "price": {"kind": "flat", "amount_cents": 150000},
                          "vat_rate_bp": 2000})
    api.expect(200, "POST", f"/v1/offers/{created['id']}/publish", operator, {})

    def published():
        status, offer = api.call("GET", f"/v1/offers/{created['id']}")
        return (offer if status == 200 and offer.get("billed") else None), offer

    return eventually("the new offer to be published", 20, published)
