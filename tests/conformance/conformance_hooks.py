"""schemathesis hooks of the conformance run: the API's rules that JSON Schema cannot state.

The document states every rule of a single value (types, formats, patterns, lengths, enums). A few rules tie
values together or to the clock, which JSON Schema cannot express; each is stated in the operation's or the field's
description instead, and the server enforces it with a 400 naming the field. A schema-valid request generated
without knowing these rules would be refused, and schemathesis would report the refusal as a failure of the
server. So, for the requests schemathesis generates as VALID only (positive mode), this hook makes each such rule
hold before the call, the way a client that read the descriptions would; requests generated as invalid are sent
untouched. schemathesis re-validates a case a hook changed, so a change here never turns an invalid request into
one reported as valid.

Each repair is one rule of the document:
- `cursor` (every list): an opaque token; a client sends back the `next_cursor` the API gave it and cannot make
  one up. A generated cursor is dropped (the first page is asked for); invalid cursors are tested by the services'
  own tests and by the negative cases here.
- Periods (`from`/`to` of the request lists, summary and statistics, of an exhibition's calendar): `to` is not
  before `from`, and a calendar spans at most 366 days.
- Exhibition bookings: a loan starts today or later (within a year) and lasts at most 366 days.
- Request submission: `kind: offer` (the default) needs an `offer_id`; `kind: orientation` has none and needs a
  `description`; what else it carries follows the offer's category, read from the API as a client would
  (`GET /v1/offers/{id}`): `dates` for an exhibition loan only (a loan period as above), `site` for an
  integrated engineering study only (the member's own commune by default).
- Attachments: the file's first bytes match its declared media type (its magic number); a generated file of random
  bytes is replaced by the smallest file of that type the server recognises.
- `Idempotency-Key`: visible ASCII; a generated key with a tab (a header value may hold one) loses it.
- Passwords (`password`, `new_password`): 12 to 128 characters mixing three of lowercase, uppercase, digits and
  symbols, without the name part of the account's email; a generated one that does not is replaced by one that
  does.
- Inviting a member's user: a member role has no `provider_code`.
- Accepting a referral: `quote_note` goes with `amount_cents`.
- Training sessions: a new session starts in the future and ends after it, its registration deadline is not after
  its start, its place is in person (a commune and an address) or online (a link), and a member's quota is not
  over the capacity; the fill rates' `to` is not before `from` (instants); the participants of one registration
  have distinct, ordinary e-mail addresses.

Loaded by tests/conformance/run.py through SCHEMATHESIS_HOOKS.
"""

from __future__ import annotations

import datetime
from collections.abc import MutableMapping
import json
import os
import re
import urllib.request
import uuid

import schemathesis
from schemathesis.generation import GenerationMode

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def _positive(case) -> bool:
    meta = getattr(case, "meta", None)
    if meta is None:
        return False
    if meta.generation.mode != GenerationMode.POSITIVE:
        return False
    return not any(info.mode.is_negative for info in meta.components.values())


def _day(value) -> datetime.date | None:
    """The calendar day a `YYYY-MM-DD` or RFC 3339 value starts with."""
    if not isinstance(value, str):
        return None
    match = _DATE.match(value)
    if not match:
        return None
    try:
        return datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _period(container: dict, start: str, end: str, longest_days: int | None = None) -> None:
    """`end` not before `start` (and after it when it is a time), at most `longest_days` apart."""
    first, last = _day(container.get(start)), _day(container.get(end))
    if first is None or last is None:
        return
    if first.year == 9999:
        # No day after it to end the period on: a start the period can follow.
        first = datetime.date(2026, 1, 1)
        container[start] = first.isoformat()
    too_long = longest_days is not None and (last - first).days > longest_days
    if last <= first or too_long or "T" in str(container[end]).upper():
        # A date `to` includes its day: the day after `from`'s is after any `from` of that day.
        container[end] = (first + datetime.timedelta(days=1)).isoformat()


_CATEGORIES: dict[str, str | None] = {}


def _category(offer_id) -> str | None:
    """The category of an offer, read from the running gateway (public), or None when there is no such offer."""
    if not isinstance(offer_id, str):
        return None
    if offer_id not in _CATEGORIES:
        base = os.environ.get("ID77_CONFORMANCE_BASE_URL", "").rstrip("/")
        category = None
        try:
            with urllib.request.urlopen(f"{base}/v1/offers/{urllib.request.quote(offer_id.strip(), safe='')}",
                                        timeout=10) as answer:
                category = json.load(answer).get("category")
        except (OSError, ValueError):
            category = None
        _CATEGORIES[offer_id] = category
    return _CATEGORIES[offer_id]


def _session(body: dict) -> None:
    """A session the catalogue can schedule: in a month, three hours, deadline at the start, a coherent place."""
    starts = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(days=30)
    body["starts_at"] = starts.isoformat().replace("+00:00", "Z")
    body["ends_at"] = (starts + datetime.timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    if "registration_deadline" in body:
        body["registration_deadline"] = body["starts_at"]
    place = body.get("place")
    if isinstance(place, dict):
        if place.get("online") is True:
            place.update(online_link="https://visio.exemple.fr/id77", commune_insee="", address="")
        else:
            place.update(online=False, commune_insee="77288", address="Hôtel du Département, Melun", online_link="")
    capacity, quota = body.get("capacity"), body.get("member_quota")
    if isinstance(capacity, (int, float)) and isinstance(quota, (int, float)) and quota > capacity:
        body["member_quota"] = capacity


_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


def _participants(body: dict) -> None:
    seen = set()
    for i, participant in enumerate(body.get("participants") or []):
        if not isinstance(participant, dict):
            continue
        email = participant.get("email")
        if not isinstance(email, str) or not _EMAIL.match(email) or email.lower() in seen:
            participant["email"] = f"participant{i}@exemple.fr"
        seen.add(participant["email"].lower())


def _instants(container: dict, start: str, end: str) -> None:
    """`end` not before `start`, both RFC 3339 instants (an equal end keeps the document's pattern)."""
    first, last = container.get(start), container.get(end)
    if not isinstance(first, str) or not isinstance(last, str):
        return
    try:
        begin = datetime.datetime.fromisoformat(first.replace("z", "Z").replace("Z", "+00:00"))
        finish = datetime.datetime.fromisoformat(last.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return
    if finish < begin:
        container[end] = first


def _strong(password) -> bool:
    if not isinstance(password, str) or not 12 <= len(password) <= 128:
        return False
    classes = [any(c.islower() for c in password), any(c.isupper() for c in password),
               any(c.isnumeric() for c in password), any(not c.isalnum() for c in password)]
    return sum(classes) >= 3


def _loan(container: dict, start: str, end: str) -> None:
    if start in container or end in container:
        begin = datetime.date.today() + datetime.timedelta(days=30)
        container[start] = begin.isoformat()
        container[end] = (begin + datetime.timedelta(days=6)).isoformat()


# The smallest file of each media type an attachment may have, as the server sniffs it (its first bytes).
_ZIP_HEAD = b"PK\x03\x04" + bytes(26)
_FILES = {
    "application/pdf": b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n",
    "image/png": b"\x89PNG\r\n\x1a\n" + bytes(8),
    "image/jpeg": b"\xff\xd8\xff\xe0" + bytes(8),
    "application/vnd.oasis.opendocument.text":
        _ZIP_HEAD + b"mimetypeapplication/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet":
        _ZIP_HEAD + b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _ZIP_HEAD + b"[Content_Types].xml",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _ZIP_HEAD + b"[Content_Types].xml",
    "text/plain": "Compte rendu de la visite du 3 décembre.\n".encode(),
}


@schemathesis.hook
def before_call(context, case, kwargs):
    if not _positive(case):
        return
    operation = f"{case.method.upper()} {case.path}"
    query = case.query if isinstance(case.query, dict) else None
    body = case.body if isinstance(case.body, dict) else None

    headers = case.headers if isinstance(case.headers, MutableMapping) else None
    if headers is not None and isinstance(headers.get("Idempotency-Key"), str):
        # Visible ASCII only (the document's pattern): schemathesis may put a tab in a header value.
        key = "".join(c for c in headers["Idempotency-Key"] if " " <= c <= "~")
        if key != headers["Idempotency-Key"]:
            headers["Idempotency-Key"] = key

    if operation == "POST /v1/requests/{id}/attachments":
        media_type = (getattr(case, "media_type", None) or "").split(";")[0].strip().lower()
        if media_type in _FILES:
            # Sent in place of the generated bytes (the case keeps them: schemathesis cannot re-validate a binary
            # body, and would then take the request for an invalid one).
            kwargs["data"] = _FILES[media_type]

    if query is not None:
        query.pop("cursor", None)
        if operation in ("GET /v1/requests", "GET /v1/requests/summary") or operation.startswith("GET /v1/statistics"):
            _period(query, "from", "to")
        if operation == "GET /v1/exhibitions/{id}/availability":
            _period(query, "from", "to", longest_days=365)
        if operation == "GET /v1/session-statistics":
            _instants(query, "from", "to")

    if body is None:
        return
    for field in ("password", "new_password"):
        if field in body and not _strong(body[field]):
            body[field] = "Ingénierie-77-Conformité"
    if operation == "POST /v1/exhibitions/{id}/bookings":
        _loan(body, "from", "to")
    elif operation == "POST /v1/offers/{id}/sessions":
        _session(body)
    elif operation == "POST /v1/sessions/{id}/registrations":
        _participants(body)
    elif operation == "POST /v1/requests":
        if body.get("kind") == "orientation":
            body.pop("offer_id", None)
            if not isinstance(body.get("description"), str) or not body["description"].strip():
                body["description"] = "Nous ne savons pas quelle offre choisir pour notre projet."
        else:
            if not body.get("offer_id"):
                body["offer_id"] = str(uuid.uuid4())
            category = _category(body["offer_id"])
            if category == "exhibition_loan":
                body["dates"] = {"start_date": "", "end_date": ""}
                _loan(body["dates"], "start_date", "end_date")
            elif category is not None:
                body.pop("dates", None)
            if category in ("exhibition_loan", "awareness_training"):
                body.pop("site", None)
    elif operation == "POST /v1/users":
        if body.get("role") in ("member_admin", "member_user"):
            body.pop("provider_code", None)
    elif operation == "POST /v1/referrals/{id}/accept":
        if body.get("quote_note") is not None and body.get("amount_cents") is None:
            body.pop("quote_note", None)
