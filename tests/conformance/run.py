#!/usr/bin/env python3
"""One schemathesis run against the running gateway, summed up for a CI log.

tests/tests/conformance.rs calls it three times (anonymous, a member admin, a provider agent) against the platform
it started. The document is read live from `<base>/openapi.json`; schemathesis (the exact version of
requirements.txt next to this file) generates requests from it — its examples, then the coverage and fuzzing
phases, a bounded number of cases per operation, a fixed seed, no stateful phase — and runs every check on
each answer (schemathesis.toml next to this file adjusts one check; conformance_hooks.py makes the valid requests it generates
keep the document's cross-field rules, which JSON Schema cannot state). A few operations are left out (EXCLUDED
below). The full schemathesis output and its reports go to `--out/<label>/`; this script prints the counts
(operations, cases, calls, failures per check) and, for each operation and failing check, the smallest failing
call.

Exit status: 0 when schemathesis reports no failure and no error, 1 when it does, 2 when it could not run.

    python3 tests/conformance/run.py --base-url http://127.0.0.1:8080 --label member-admin \
        --token-env ID77_CONFORMANCE_TOKEN --out /tmp/conformance
"""

from __future__ import annotations

import argparse
import base64
import collections
import glob
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Operations never called, by schemathesis label (method and path template of the document):
EXCLUDED = {
    # revokes a session: the run's own whenever its refresh token is the one sent (examples, replayed values)
    "POST /v1/auth/logout": "ends a session (the run's own, were its refresh token sent)",
    # operator only, so refused to the run's callers today; but a rotation retires the key under every token
    "POST /v1/auth/keys/rotate": "rotates the signing key under the run's tokens",
    # removes a user: with a fuzzed id rarely, but possibly the caller or the member's last admin
    "DELETE /v1/users/{id}": "removes users (possibly the caller)",
    # a server-sent event stream: answers 200 and never ends
    "GET /v1/events": "streams forever",
}

# How schemathesis is started: its command line, with `ast.parse` behind a lock. CPython 3.11 keeps the AST
# constructor's recursion depth in per-interpreter state, so two threads parsing at once (schemathesis's workers and
# its reporting thread; Hypothesis parses sources to describe lambdas) may fail with « SystemError: AST constructor
# recursion depth mismatch » (python/cpython#106905), which schemathesis reports as an error of the operation.
LAUNCHER = """
import ast, sys, threading
_parse, _lock = ast.parse, threading.RLock()
def _locked_parse(*args, **kwargs):
    with _lock:
        return _parse(*args, **kwargs)
ast.parse = _locked_parse
import schemathesis.cli
sys.argv[0] = "schemathesis"
schemathesis.cli.schemathesis()
"""

# Cut long values (fuzzed query strings run to kilobytes) in what is printed.
SHOWN = 240


def pinned_version() -> str:
    for line in (HERE / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("schemathesis=="):
            return line.split("==", 1)[1]
    raise SystemExit("tests/conformance/requirements.txt pins no schemathesis version")


def cut(text: str, limit: int = SHOWN) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


def decode(blob) -> str:
    if blob is None:
        return ""
    if isinstance(blob, dict) and "$base64" in blob:
        try:
            return base64.b64decode(blob["$base64"]).decode("utf-8", "replace")
        except ValueError:
            return "<undecodable>"
    if isinstance(blob, dict) and "string" in blob:
        return str(blob["string"])
    return str(blob)


def fetch_document(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=30) as answer:
        return json.load(answer)


def operation_labels(document: dict) -> list[str]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return sorted(
        f"{method.upper()} {path}"
        for path, item in (document.get("paths") or {}).items()
        for method in (item or {})
        if method in methods
    )


def schemathesis_command(args, report_dir: Path, token: str | None) -> list[str]:
    command = [
        sys.executable, "-c", LAUNCHER, "--config-file", str(HERE / "schemathesis.toml"),
        "run", f"{args.base_url}/openapi.json",
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(args.max_examples),
        "--seed", str(args.seed),
        "--workers", str(args.workers),
        "--request-timeout", "20",
        "--generation-database", "none",
        # Hypothesis's health checks (slow or much-filtered generation) judge the generator, not the API.
        "--suppress-health-check", "all",
        "--no-color",
        "--report", "json,ndjson",
        "--report-dir", str(report_dir),
        "--report-json-path", str(report_dir / "report.json"),
        "--report-ndjson-path", str(report_dir / "events.ndjson"),
    ]
    for label in EXCLUDED:
        command += ["--exclude-name", label]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    return command


def summarize(label: str, report_dir: Path, excluded_present: list[str]) -> tuple[int, list[str]]:
    """Prints the counts and the failures; returns (number of failures and errors, lines of the failure list)."""
    report = json.loads((report_dir / "report.json").read_text())
    ops = report.get("operations", {})
    cases = report.get("test_cases", {})

    calls = 0
    by_check: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    # (operation, check, code) -> [(size of the request, case id, failure, interaction)]
    failing: dict[tuple[str, str, str], list] = collections.defaultdict(list)
    statuses: collections.Counter = collections.Counter()
    # Errors of schemathesis itself (an operation it could not test, a crash): label, phase, type, message.
    crashes = []
    with open(report_dir / "events.ndjson", encoding="utf-8") as events:
        for line in events:
            event = json.loads(line)
            error = event.get("NonFatalError") or event.get("FatalError")
            if error:
                value = error.get("value") or {}
                crashes.append(f"{error.get('label', '-')} ({error.get('phase', '-')}): {value.get('type', '?')}: "
                               f"{cut(str(value.get('message', '')), 400)}")
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            recorder = finished.get("recorder") or {}
            interactions = recorder.get("interactions") or {}
            calls += len(interactions)
            for interaction in interactions.values():
                response = interaction.get("response") or {}
                if "status_code" in response:
                    statuses[response["status_code"] // 100] += 1
            for case_id, checks in (recorder.get("checks") or {}).items():
                for check in checks:
                    name = check.get("name", "?")
                    status = check.get("status", "?")
                    by_check[name][status] += 1
                    if status != "failure":
                        continue
                    failure = (check.get("failure_info") or {}).get("failure") or {}
                    key = (failure.get("operation") or recorder.get("label", "?"), name, failure.get("code", "?"))
                    interaction = interactions.get(case_id) or {}
                    request = interaction.get("request") or {}
                    size = len(request.get("uri", "")) + len(decode(request.get("body")))
                    failing[key].append((size, case_id, failure, interaction))

    failures = report.get("failures") or []
    errors = report.get("errors") or []
    print(f"== schemathesis {report.get('schemathesis_version')} as {label}: "
          f"{ops.get('tested', 0)} operations tested of {ops.get('selected', 0)} selected "
          f"({ops.get('total', 0)} in the document, {len(excluded_present)} excluded), "
          f"{cases.get('generated', 0)} cases, {calls} calls recorded "
          f"(1xx-5xx: {', '.join(f'{k}xx {statuses[k]}' for k in sorted(statuses))}), "
          f"seed {report.get('seed')}, {report.get('running_time', 0):.1f} s")
    print(f"   checks (cases passed / failed):")
    for name in sorted(by_check):
        counts = by_check[name]
        print(f"     {name:32} {counts['success']:6} / {counts['failure']}")
    for failure in failures:
        print(f"   {failure.get('code')} {failure.get('title')}: {failure.get('count')} "
              f"({', '.join(failure.get('operations', []))})")
    for error in errors:
        print(f"   error: {error.get('title')}: {error.get('count')} (see ERRORS in the full output)")
    for crash in crashes:
        print(f"     {crash}")
    for warning, operations in (report.get("warnings") or {}).items():
        if operations:
            print(f"   warning {warning}: {len(operations)} operations")

    lines = []
    for (operation, check, code), found in sorted(failing.items()):
        size, case_id, failure, interaction = min(found, key=lambda f: f[0])
        request = interaction.get("request") or {}
        response = interaction.get("response") or {}
        message = (failure.get("message") or "").strip().replace("\n", "; ")
        lines.append(f"[{label}] {operation} — {check} ({code} {failure.get('title', '')}): {len(found)} case(s)")
        lines.append(f"    {cut(message, 400)}")
        lines.append(f"    request:  {request.get('method', '?')} {cut(request.get('uri', '?'))}")
        body = decode(request.get("body"))
        if body:
            lines.append(f"    body:     {cut(body)}")
        if response:
            lines.append(f"    response: {response.get('status_code')} {cut(decode(response.get('content')))}")
        lines.append(f"    case:     {case_id} (its curl command in schemathesis.log)")
    return len(failures) + len(errors), lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="the gateway, e.g. http://127.0.0.1:8080")
    parser.add_argument("--label", required=True, help="who calls: names the report folder and the output")
    parser.add_argument("--token-env", help="environment variable holding the caller's access token")
    parser.add_argument("--out", required=True, help="folder for the reports (one sub-folder per label)")
    parser.add_argument("--max-examples", type=int, default=10, help="cases per operation and phase")
    parser.add_argument("--seed", type=int, default=77)
    parser.add_argument("--workers", default="1", help="schemathesis workers (1: the same order on every run)")
    args = parser.parse_args()
    args.base_url = args.base_url.rstrip("/")

    try:
        import schemathesis
    except ImportError:
        print("schemathesis is not installed: python3 -m pip install -r tests/conformance/requirements.txt "
              "(make test does it)", file=sys.stderr)
        return 2
    if schemathesis.__version__ != pinned_version():
        print(f"schemathesis {schemathesis.__version__} is installed, {pinned_version()} is pinned: "
              "python3 -m pip install -r tests/conformance/requirements.txt", file=sys.stderr)
        return 2

    token = os.environ.get(args.token_env, "") if args.token_env else ""
    if args.token_env and not token:
        print(f"{args.token_env} is empty", file=sys.stderr)
        return 2

    document = fetch_document(args.base_url)
    labels = operation_labels(document)
    excluded_present = [label for label in labels if label in EXCLUDED]
    print(f"== {args.label}: {len(labels)} operations in {args.base_url}/openapi.json; excluded:")
    for label, why in EXCLUDED.items():
        print(f"     {label:28} {why}{'' if label in labels else ' (not in the document)'}")

    report_dir = Path(args.out) / args.label
    report_dir.mkdir(parents=True, exist_ok=True)
    for stale in glob.glob(str(report_dir / "*")):
        if os.path.isfile(stale):
            os.remove(stale)
    log_path = report_dir / "schemathesis.log"
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        # Run from the report folder: `st replay` and any file schemathesis writes stay there.
        # conformance_hooks.py next to this file: the cross-field rules of the document, kept by the valid requests it makes.
        env = dict(os.environ, SCHEMATHESIS_HOOKS="conformance_hooks", ID77_CONFORMANCE_BASE_URL=args.base_url,
                   PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
        done = subprocess.run(schemathesis_command(args, report_dir, token or None), stdout=log, env=env,
                              stderr=subprocess.STDOUT, cwd=report_dir, check=False)
    elapsed = time.monotonic() - started
    if not (report_dir / "report.json").exists() or not (report_dir / "events.ndjson").exists():
        print(f"schemathesis exited with {done.returncode} and wrote no report after {elapsed:.1f} s; "
              f"its output ({log_path}):", file=sys.stderr)
        print(log_path.read_text()[-6000:], file=sys.stderr)
        return 2

    problems, lines = summarize(args.label, report_dir, excluded_present)
    print(f"   full output: {log_path}")
    if lines:
        print(f"== {args.label}: failures by operation and check (smallest failing call of each):")
        for line in lines:
            print(line)
    if not problems and done.returncode == 0:
        # Every call of the run (some 14 MB): worth keeping only to study a failure.
        (report_dir / "events.ndjson").unlink()
    if problems or done.returncode != 0:
        if not problems:
            print(f"schemathesis exited with {done.returncode}; the end of its output:")
            print(log_path.read_text()[-4000:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
