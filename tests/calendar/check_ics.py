#!/usr/bin/env python3
"""Reads an iCalendar file with PyPI `icalendar` (a parser no one here wrote) and checks what ID 77 promises.

Usage: check_ics.py CALENDAR.ics [EXPECTED.json]

Checks: the envelope (VERSION 2.0, PRODID, METHOD:PUBLISH), one VTIMEZONE Europe/Paris whose own definition
(its RRULEs, not the name looked up in a database) gives the offsets of the real Europe/Paris from 2020 to 2040,
and for each VEVENT a UID, a DTSTAMP in UTC, DTSTART and DTEND tz-aware in Europe/Paris with DTEND after
DTSTART, a STATUS CONFIRMED or CANCELLED. EXPECTED.json, if given, maps each UID to the values the event must
have: any of "start" and "end" (UTC instants, "2026-12-06T08:30:00Z"), "summary", "description", "location",
"url", "status", "sequence"; the file must hold exactly those UIDs.

Prints the events as JSON (the same keys, instants in UTC) on stdout; exits 1 with the reasons on stderr.
"""

import json
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from icalendar import Calendar

PARIS = ZoneInfo("Europe/Paris")


def utc(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_timezone(cal, problems):
    zones = cal.walk("VTIMEZONE")
    if [str(z.get("TZID")) for z in zones] != ["Europe/Paris"]:
        problems.append(f"expected one VTIMEZONE Europe/Paris, found {[str(z.get('TZID')) for z in zones]}")
        return
    defined = zones[0].to_tz(lookup_tzid=False)
    at = datetime(2020, 1, 1, tzinfo=timezone.utc)
    while at < datetime(2041, 1, 1, tzinfo=timezone.utc):
        local = at.astimezone(PARIS).replace(tzinfo=None)
        if at.astimezone(PARIS).fold == 0 and local.replace(tzinfo=defined).utcoffset() != PARIS.utcoffset(local):
            problems.append(f"the VTIMEZONE disagrees with Europe/Paris at {utc(at)}")
            return
        at += timedelta(hours=6)


def event_values(event, problems):
    uid = str(event.get("UID", ""))
    where = f"event {uid!r}"
    if not uid:
        problems.append("an event without UID")
    stamp = event.decoded("DTSTAMP") if "DTSTAMP" in event else None
    if not isinstance(stamp, datetime) or stamp.utcoffset() != timedelta(0):
        problems.append(f"{where}: DTSTAMP is not a UTC date-time: {stamp!r}")
    times = {}
    for name in ("DTSTART", "DTEND"):
        if name not in event:
            problems.append(f"{where}: no {name}")
            continue
        value = event.decoded(name)
        tzid = event[name].params.get("TZID")
        if not isinstance(value, datetime) or value.tzinfo is None:
            problems.append(f"{where}: {name} is not tz-aware: {value!r}")
            continue
        if tzid != "Europe/Paris":
            problems.append(f"{where}: {name} has TZID {tzid!r}, not Europe/Paris")
        if value.utcoffset() != PARIS.utcoffset(value.replace(tzinfo=None)):
            problems.append(f"{where}: {name} has offset {value.utcoffset()} unlike Paris at {value}")
        times[name] = value
    if len(times) == 2 and times["DTEND"] <= times["DTSTART"]:
        problems.append(f"{where}: DTEND is not after DTSTART")
    status = str(event.get("STATUS", ""))
    if status not in ("CONFIRMED", "CANCELLED"):
        problems.append(f"{where}: STATUS {status!r}")
    return {
        "uid": uid,
        "start": utc(times["DTSTART"]) if "DTSTART" in times else None,
        "end": utc(times["DTEND"]) if "DTEND" in times else None,
        "summary": str(event.get("SUMMARY", "")),
        "description": str(event.get("DESCRIPTION", "")),
        "location": str(event.get("LOCATION", "")),
        "url": str(event["URL"]) if "URL" in event else None,
        "status": status,
        "sequence": int(event.get("SEQUENCE", 0)),
    }


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        raw = f.read()
    problems = []
    if b"\n" in raw.replace(b"\r\n", b""):
        problems.append("a line does not end with CRLF")
    if any(len(line) > 75 for line in raw.split(b"\r\n")):
        problems.append("a line is longer than 75 octets")
    cal = Calendar.from_ical(raw)
    for name, value in (("VERSION", "2.0"), ("METHOD", "PUBLISH"), ("CALSCALE", "GREGORIAN")):
        if str(cal.get(name, "")) != value:
            problems.append(f"{name} is {cal.get(name)!r}, not {value}")
    if not str(cal.get("PRODID", "")):
        problems.append("no PRODID")
    check_timezone(cal, problems)
    events = [event_values(e, problems) for e in cal.walk("VEVENT")]
    if len(argv) == 3:
        with open(argv[2], encoding="utf-8") as f:
            expected = json.load(f)
        found = {e["uid"]: e for e in events}
        if sorted(found) != sorted(expected) or len(found) != len(events):
            problems.append(f"UIDs {sorted(e['uid'] for e in events)}, expected {sorted(expected)}")
        for uid, wanted in expected.items():
            for key, value in wanted.items():
                got = found.get(uid, {}).get(key)
                if got != value:
                    problems.append(f"event {uid!r}: {key} is {got!r}, expected {value!r}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    json.dump(events, sys.stdout, ensure_ascii=False, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
