#!/usr/bin/env python3
"""The chart's workloads run as processes: helm/id77 against the binaries it starts (issue 16, item 3).

For the default values and for values-production.yaml, the chart is rendered with real Helm (PyPI
helm-python-sdk, as tests/helm/check_chart.py does) and every Deployment and Job runs as local processes of the
workspace's binaries (cargo's build folder, `deploy/local/target-dir.sh`, debug profile: `cargo build --workspace
--bins` first):

* Command and args are the container's; the binary is the one its command names. The environment is the
  kubelet's: the image's ENV (deploy/Dockerfile's last stage, and its PATH), `envFrom`, `env`, `$(VAR)`; nothing
  of this machine's environment. Secrets and ConfigMaps the chart renders are used as rendered; Secret volumes and
  ConfigMap volumes are written as files (items, modes). Only hosts, ports and mount paths are rewritten, through
  one table: each Service name (short and cluster forms) and port -> the loopback port of the process its
  selector picks (through its targetPort); each process's `0.0.0.0:<port>` listen addresses -> its own free port;
  the database host -> `localhost` and the test's PostgreSQL; the NATS URL -> the test's nats-server; the OTLP
  endpoint -> a sink that accepts the exports; a hosted consumer's `https://` endpoint -> a local HTTPS endpoint.
  Paths: each container gets a file tree of its own where every volumeMount (and the image's own files: the
  directory of collectivités at /usr/share/id77/decoupage-administratif -> `.cache/decoupage-administratif/data`,
  `make directory`) is linked at its mountPath; absolute paths in env and args point into it, and one that
  exists neither there nor under /tmp is a failure. One process per Deployment (replicas are not multiplied).
  A hosted referral consumer gets SSL_CERT_FILE = the test's CA, standing for the image's trust store (the
  provider's real endpoint has a public certificate; this variable is not checked against the binary).
* Secrets the chart names but does not make (production's `existingSecret`s) are made by the test: database
  passwords generated; NATS NKEY seeds from `id77-nats-config generate` (the binary), whose server configuration
  the test's nats-server runs with JetStream; providers' HMAC keys generated; the reconciler's account is the
  demo coordinator; the bootstrap hook's administrator Secret gets the test's superuser password (and URL); a CA
  certificate key (`*.crt`, `*.pem`) gets the test's CA. A Secret key the test cannot fill fails the run.
* PostgreSQL is a private cluster (initdb in a temporary folder, free port). When the database URLs ask for TLS
  (`sslmode=require|verify-ca|verify-full`: production) it accepts only TLS with passwords, with a server
  certificate for `localhost` signed by a CA made here with openssl, so `verify-full` checks the name; without
  (the default values), plain connections are trusted. Roles and databases come from the chart's own bootstrap
  Job when it renders one (a container running `bootstrap-db`), else from SQL run here (each role owns its own
  database, no superuser, password from the service's Secret).
* NATS is a private nats-server (the pinned one) with JetStream. When the chart's NATS clients ask for TLS (a
  `tls://` URL or `ID77_NATS_CA_FILE`: production), its one client listener is TLS only, as the official chart's
  (deploy/nats/values.yaml), with a certificate for `localhost` from the same test CA: the chart's NATS host is
  mapped to `localhost` and the CA Secret it mounts (`nats.tls`) gets the test's CA; without (the default values),
  plain.
* Order: pre-install hook Jobs (by weight) run to completion; then the Deployments and plain Jobs start, the
  post-install hook Jobs run (as `helm install` without --wait does); a Deployment's process that exits is
  restarted with backoff, as the kubelet does (five exits: crash loop, failure). Each container's startup and
  readiness probes are run as declared (gRPC health with the probe's service, HTTP GET path and port, TCP) until
  ready; the readiness time is printed; then its liveness probe and, when it declares a `metrics` port, GET
  /metrics must answer.
* The journey through the gateway's Service (chartproc/journey.py): Meaux is approved, its admin invited, a
  request for a billed offer submitted, the referral accepted (by the hosted referral consumer through the HTTPS
  endpoint when the chart runs one: when its provider is not in the seed catalogue, the demo operator adds it
  and a flat-priced offer through the API; else by the provider's agent through the API), the quote is
  `proposed`; on failure the line names the services' last warnings (e.g. billing's missing issuer identity).
  The demo accounts need ID77_DEMO_PASSWORD and ID77_DEMO_PROVIDERS on membership: the chart has no value for
  them, so they are given through the chart's own extension `services.membership.env` in extra values passed to
  the render (the only values the test adds). CronJobs' jobs then run once (the reconciler: it must exit 0).
* SIGTERM to every Deployment's process (after its preStop hook, when declared); each must exit within its pod's
  terminationGracePeriodSeconds; the time is printed.
* Mismatches fail: a variable set explicitly on a container that its binary never reads (a name absent from the
  binary: any crate of its tree counts), a ConfigMap key passed with envFrom that none of the binaries receiving
  it reads, a path no volume mounts, a Service selecting no Deployment or targeting an undeclared port, a pre-install
  hook using a ConfigMap or Secret Helm creates only after it, a flag or a required variable (the process exits),
  a probe's path, port or service, a metrics port that serves nothing, a shutdown beyond the grace period.

Everything started is stopped at the end, also on failure (process groups); the temporary folders are removed
(the logs of a failed run are kept under <build folder>/chart-run-logs/). Exit status 0 only if both runs pass;
each failure is one line.

Run: python3 tests/helm/run_chart.py [--values default|production]...   (make chart-run installs the PyPI
packages and builds the binaries first). Needs nats-server, PostgreSQL's initdb/pg_ctl/psql and openssl.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import helm_python as helm
import yaml

sys.dont_write_bytecode = True  # no __pycache__ beside the test in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from chartproc import journey, probes  # noqa: E402
from chartproc.infra import Certificates, Nats, OtlpSink, Postgres, ProviderEndpoint, free_port  # noqa: E402
from chartproc.workloads import (BinaryStrings, Container, Mapper, Missing, PodBuilder, decode_secret,  # noqa: E402
                                 image_env)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "id77"
RELEASE = "id77"
NAMESPACE = "id77"
DEMO_PASSWORD = "Essai-ID77-2026!"
HOOK = "helm.sh/hook"
# Set by the kubelet or the image, never by the chart: not checked against the binaries.
NOT_CHECKED = {"PATH", "HOSTNAME", "SSL_CERT_FILE"}


def say(line: str = "") -> None:
    print(line, flush=True)


def deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def render(values: dict) -> list[dict]:
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith(".yaml"):
            objects += [d for d in yaml.safe_load_all(text) if d]
    return objects


def target_dir() -> Path:
    return Path(subprocess.run(["bash", str(ROOT / "deploy/local/target-dir.sh")], capture_output=True, text=True,
                               check=True, cwd=ROOT).stdout.strip())


def seed_providers() -> list[str]:
    seed = json.loads((ROOT / "services/catalogue/seed/catalogue.json").read_text())
    return [p["code"] for p in seed["providers"]]


def pod_template(obj: dict) -> dict:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def hooks(obj: dict) -> list[str]:
    return [h.strip() for h in obj["metadata"].get("annotations", {}).get(HOOK, "").split(",") if h.strip()]


def weight(obj: dict) -> int:
    return int(obj["metadata"].get("annotations", {}).get("helm.sh/hook-weight", "0"))


class Secrets:
    """The chart's rendered Secrets, and those the test makes for the names the chart only refers to."""

    def __init__(self, rendered: dict[str, dict[str, bytes]], made: dict[str, dict[str, bytes]], ca: bytes):
        self.rendered, self.made, self.ca = rendered, made, ca

    def _secret(self, name: str) -> dict[str, bytes]:
        if name in self.rendered:
            return self.rendered[name]
        if name in self.made:
            return self.made[name]
        raise Missing(f"Secret {name} is neither rendered by the chart nor one the test knows how to make")

    def keys(self, name: str) -> list[str]:
        return list(self._secret(name))

    def get(self, name: str, key: str) -> bytes:
        if name not in self.rendered and (key.endswith((".crt", ".pem")) or key in ("ca", "ca-cert", "cacert")):
            # A CA certificate the chart mounts from a Secret of the operator's: the test's CA.
            self.made.setdefault(name, {})[key] = self.ca
        secret = self._secret(name)
        if key in secret:
            return secret[key]
        raise Missing(f"Secret {name} has no key {key!r} (rendered: {name in self.rendered})")


class Run:
    """One values file: render, run, journey, shutdown."""

    def __init__(self, label: str, values: dict, bin_dir: Path, logs_dir: Path):
        self.label, self.bin_dir, self.logs_dir = label, bin_dir, logs_dir
        demo_providers = seed_providers() + [p for p in (values.get("providers") or {}) if p not in seed_providers()]
        # The only values the test adds: the demo accounts of the journey, through the chart's env extension.
        extra = {"services": {"membership": {"env": {"ID77_DEMO_PASSWORD": DEMO_PASSWORD,
                                                     "ID77_DEMO_PROVIDERS": ",".join(demo_providers)}}}}
        self.values = deep_merge(values, extra)
        self.merged = deep_merge(yaml.safe_load((CHART / "values.yaml").read_text()), self.values)
        self.failures: list[str] = []
        self.closers: list = []
        self.containers: list[Container] = []
        self.tls: bool | None = None
        self.nats_tls: bool | None = None
        self.root = Path(tempfile.mkdtemp(prefix="id77-chart-run-"))
        os.chmod(self.root, 0o755)

    def fail(self, message: str) -> None:
        self.failures.append(message)
        say(f"  FAIL: {message}")

    # ---- set-up ------------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        objects = render(self.values)
        self.objects = objects
        self.workloads = [o for o in objects if o["kind"] in ("Deployment", "Job", "CronJob") and "test" not in hooks(o)]
        configmaps = {o["metadata"]["name"]: {k: str(v) for k, v in (o.get("data") or {}).items()}
                      for o in objects if o["kind"] == "ConfigMap"}
        rendered_secrets = {o["metadata"]["name"]: decode_secret(o) for o in objects if o["kind"] == "Secret"}
        self.late = {o["metadata"]["name"] for o in objects if o["kind"] in ("ConfigMap", "Secret") and not hooks(o)}
        containers = [c for w in self.workloads for c in pod_template(w)["spec"].get("containers", [])]
        env_values = {e["name"]: e.get("value", "") for c in containers for e in c.get("env", [])}
        db_urls = [e["value"] for c in containers for e in c.get("env", [])
                   if e["name"] == "ID77_DATABASE_URL" and "value" in e]
        self.tls = any(re.search(r"sslmode=(require|verify-ca|verify-full)", u) for u in db_urls)
        certs = Certificates(self.root)
        self.certs = certs

        # PostgreSQL: TLS only when the chart's URLs ask for it.
        pg = Postgres(self.root, certs, self.tls)
        self.closers.append(pg)
        self.pg = pg
        mapper = Mapper(NAMESPACE)
        self.mapper = mapper
        for url in db_urls:
            u = urlsplit(url)
            mapper.add(u.hostname, u.port or 5432, "localhost", pg.port)
        modes = sorted({m for u in db_urls for m in re.findall(r"sslmode=([a-z-]+)", u)}) or ["none"]
        say(f"  PostgreSQL {pg.port}: {'TLS only (server certificate for localhost, test CA)' if self.tls else 'without TLS'}"
            f"; the chart's sslmode: {', '.join(modes)}")

        # NATS: NKEY users when any workload authenticates with one.
        nats_url = next((cm["ID77_NATS_URL"] for cm in configmaps.values() if "ID77_NATS_URL" in cm), None)
        uses_nkeys = "ID77_NATS_NKEY_FILE" in env_values or any(
            a.startswith("--nkey") for c in containers for a in c.get("command", []) + c.get("args", []))
        providers = sorted(self.merged.get("providers") or {})
        # TLS only (the official chart's listener, deploy/nats/values.yaml) when the chart's clients ask for it: a
        # tls:// URL or the NATS CA (ID77_NATS_CA_FILE; its Secret gets the test's CA, like PostgreSQL's).
        nats_urls = [u.strip() for u in (nats_url or "").split(",") if u.strip()]
        self.nats_tls = "ID77_NATS_CA_FILE" in env_values or any(u.startswith("tls://") for u in nats_urls)
        nats = Nats(self.root, self.bin_dir / "id77-nats-config", providers if uses_nkeys else None,
                    self.root / "nats.log", certs if self.nats_tls else None)
        self.closers.append(nats)
        for url in nats_urls:
            u = urlsplit(url)
            # With TLS the certificate names localhost, as the database's: the chart's host is mapped to that name.
            mapper.add(u.hostname, u.port or 4222, "localhost" if self.nats_tls else "127.0.0.1", nats.port)
        say(f"  NATS {nats.port}: JetStream, " + (f"NKEY users of id77-nats-config generate ({len(nats.seeds)} seeds, "
                                                 f"providers {', '.join(providers)})" if uses_nkeys else "no authentication")
            + (", TLS only (server certificate for localhost, test CA; the chart's URL "
               f"{', '.join(nats_urls)})" if self.nats_tls else ", without TLS"))
        # One private nats-server here: streams of one replica, whatever the values ask (values-production.yaml's 3
        # is for a three-node cluster, refused by a single server); the R3 streams are tested on a real cluster by
        # the Rust tests (services/platform/tests/jetstream_replicas.rs, tests/).
        for cm in configmaps.values():
            if cm.get("ID77_STREAM_REPLICAS", "1") != "1":
                say(f"  stream replicas: the values ask {cm['ID77_STREAM_REPLICAS']}; run with 1 on the single nats-server")
                cm["ID77_STREAM_REPLICAS"] = "1"
        # OTLP collector and the hosted consumers' endpoints.
        otel = next((cm["OTEL_EXPORTER_OTLP_ENDPOINT"] for cm in configmaps.values()
                     if cm.get("OTEL_EXPORTER_OTLP_ENDPOINT")), None)
        if otel:
            sink = OtlpSink()
            self.closers.append(sink)
            self.sink = sink
            u = urlsplit(otel)
            mapper.add(u.hostname, u.port or (443 if u.scheme == "https" else 80), "127.0.0.1", sink.port)
        self.endpoint = None
        self.hosted: list[str] = []
        for w in self.workloads:
            for c in pod_template(w)["spec"].get("containers", []):
                argv = c.get("command", []) + c.get("args", [])
                url = next((a.split("=", 1)[1] for a in argv if a.startswith("--url=")), None)
                code = next((a.split("=", 1)[1] for a in argv if a.startswith("--provider=")), None)
                if url and "id77-referral-consumer" in argv[0]:
                    if self.endpoint is None:
                        self.endpoint = ProviderEndpoint(certs)
                        self.closers.append(self.endpoint)
                    u = urlsplit(url)
                    mapper.add(u.hostname, u.port or (443 if u.scheme == "https" else 80), "localhost",
                               self.endpoint.port)
                    self.hosted.append(code)
        # Ports: each Deployment's containerPorts get local ports; Services map onto them.
        self.locals: dict[str, dict[int, int]] = {}
        deployments = [w for w in self.workloads if w["kind"] == "Deployment"]
        for d in deployments:
            self.locals[d["metadata"]["name"]] = {p["containerPort"]: free_port()
                                                  for c in pod_template(d)["spec"]["containers"]
                                                  for p in c.get("ports", [])}
        for svc in (o for o in objects if o["kind"] == "Service"):
            name, selector = svc["metadata"]["name"], svc["spec"].get("selector") or {}
            target = [d for d in deployments
                      if selector and selector.items() <= pod_template(d)["metadata"].get("labels", {}).items()]
            if not target:
                self.fail(f"Service {name} selects no Deployment ({selector})")
                continue
            d = target[0]
            cports = {p.get("name"): p["containerPort"] for c in pod_template(d)["spec"]["containers"]
                      for p in c.get("ports", [])}
            for p in svc["spec"].get("ports", []):
                tp = p.get("targetPort", p["port"])
                cport = cports.get(tp) if isinstance(tp, str) else tp
                if cport is None or cport not in self.locals[d["metadata"]["name"]]:
                    self.fail(f"Service {name} port {p['port']} targets {tp!r}, not a port {d['metadata']['name']} declares")
                    continue
                mapper.add_service(name, p["port"], self.locals[d["metadata"]["name"]][cport])

        # Secrets the chart refers to without making them.
        made: dict[str, dict[str, bytes]] = {}
        self.db_passwords: dict[str, str] = {}
        for name, svc in (self.merged.get("services") or {}).items():
            if not svc.get("enabled"):
                continue
            db = svc.get("database") or {}
            if db.get("existingSecret"):
                made.setdefault(db["existingSecret"], {})[db.get("passwordKey", "password")] = os.urandom(16).hex().encode()
            n = svc.get("natsUser") or {}
            if n.get("existingSecret"):
                made.setdefault(n["existingSecret"], {})["nkey"] = self._seed(nats, name)
        for code, p in (self.merged.get("providers") or {}).items():
            secret = made.setdefault(p.get("existingSecret") or f"{RELEASE}-provider-{code}", {})
            secret["nkey"] = self._seed(nats, f"provider-{code}")
            if (p.get("hosted") or {}).get("enabled") and p.get("existingSecret"):
                key = os.urandom(24).hex().encode()
                secret["hmac-key"] = key
            if self.endpoint is not None:
                key = (rendered_secrets.get(p.get("existingSecret") or "") or {}).get("hmac-key") or secret.get("hmac-key")
                if not key:
                    key = (rendered_secrets.get(f"{RELEASE}-provider-{code}") or {}).get("hmac-key")
                if key:
                    self.endpoint.keys.append(key)
        boot = self.merged.get("bootstrap") or {}
        if boot.get("enabled") and boot.get("adminSecret"):
            # The administrator the bootstrap hook connects as: the test's superuser (`postgres`), or a role with
            # CREATEROLE and CREATEDB made here when the values name another; its password (and, when the values
            # ask for a URL, the URL with the values' host) in the administrator's Secret.
            pgv = self.merged.get("postgresql") or {}
            user, password = boot.get("adminUser", "postgres"), pg.superuser_password
            if user != "postgres":
                pg.psql(f'CREATE ROLE "{user}" LOGIN CREATEROLE CREATEDB PASSWORD \'{password}\';')
            secret = made.setdefault(boot["adminSecret"], {})
            if boot.get("adminPasswordKey"):
                secret[boot["adminPasswordKey"]] = password.encode()
            if boot.get("adminSecretKey"):
                params = f"?{pgv['params']}" if pgv.get("params") else ""
                secret[boot["adminSecretKey"]] = (f"postgres://{user}:{password}@{pgv.get('host')}:"
                                                  f"{pgv.get('port', 5432)}/{boot.get('adminDatabase', 'postgres')}"
                                                  f"{params}").encode()
        rec = self.merged.get("reconcile") or {}
        if rec.get("existingSecret"):
            made[rec["existingSecret"]] = {"email": b"coordination@id77.demo", "password": DEMO_PASSWORD.encode()}
        self.secrets = Secrets(rendered_secrets, made, certs.ca.read_bytes())

        # The pods.
        cache = ROOT / ".cache/decoupage-administratif/data"
        if not (cache / "communes.json").exists():
            raise Missing(f"{cache} has no communes.json: run `make directory`")
        found: list[str] = []
        builder = PodBuilder(root=self.root, mapper=mapper, configmaps=configmaps, secret=self.secrets,
                             bin_dir=self.bin_dir, image=image_env(ROOT / "deploy/Dockerfile"),
                             image_paths={"/usr/share/id77/decoupage-administratif": cache}, failures=found)
        self.by_workload: dict[str, list[Container]] = {}
        for w in self.workloads:
            label = f"{w['kind']}/{w['metadata']['name']}"
            try:
                built = builder.build(label, w["kind"], pod_template(w), self.locals.get(w["metadata"]["name"], {}))
            except Missing as error:
                self.fail(f"{label}: {error}")
                continue
            for c in built:
                if "id77-referral-consumer" in c.binary.name and self.endpoint is not None:
                    # The image's trust store stands for the public CA of the provider's real endpoint.
                    c.env["SSL_CERT_FILE"] = str(certs.ca)
            self.by_workload[label] = built
            self.containers += built
        for message in found:
            self.fail(message)
        self._check_env()
        self._check_hook_order()

    def _seed(self, nats: Nats, user: str) -> bytes:
        if user not in nats.seeds:
            raise Missing(f"id77-nats-config generate made no seed for {user!r} (made: {sorted(nats.seeds)})")
        return nats.seeds[user]

    def _check_env(self) -> None:
        strings = BinaryStrings()
        envfrom: dict[str, list[Container]] = {}
        for c in self.containers:
            for name in c.explicit_env:
                if name not in NOT_CHECKED and not strings.has(c.binary, name):
                    self.fail(f"{c.workload}: the chart sets {name}, which {c.binary.name} never reads")
            for name in c.from_env:
                envfrom.setdefault(name, []).append(c)
        for name, receivers in sorted(envfrom.items()):
            if name not in NOT_CHECKED and not any(strings.has(c.binary, name) for c in receivers):
                self.fail(f"envFrom key {name} is read by none of {sorted({c.binary.name for c in receivers})}")

    def _check_hook_order(self) -> None:
        for w in self.workloads:
            if "pre-install" not in hooks(w):
                continue
            spec = pod_template(w)["spec"]
            used = set()
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                used |= {s.get("configMapRef", s.get("secretRef", {})).get("name") for s in c.get("envFrom", [])}
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {})
                    used.add((ref.get("secretKeyRef") or ref.get("configMapKeyRef") or {}).get("name"))
            for v in spec.get("volumes", []):
                used.add((v.get("secret") or {}).get("secretName"))
                used.add((v.get("configMap") or {}).get("name"))
            for name in sorted(n for n in used if n in self.late):
                self.fail(f"pre-install hook {w['metadata']['name']} uses {name}, which Helm creates only after the "
                          "pre-install hooks")

    def create_databases(self) -> None:
        bootstrap = [c for c in self.containers if c.kind == "Job" and any("bootstrap" in a for a in c.argv)]
        roles: dict[str, tuple[str, str | None]] = {}
        for c in self.containers:
            url = c.env.get("ID77_DATABASE_URL")
            if url:
                u = urlsplit(url)
                roles[u.username] = (u.path.lstrip("/"), u.password or c.env.get("PGPASSWORD"))
        if bootstrap:
            say(f"  databases and roles: by the chart's Job {bootstrap[0].workload}")
            return
        sql = []
        for user, (db, password) in sorted(roles.items()):
            pw = f"PASSWORD '{password}'" if password else ""
            sql += [f'CREATE ROLE "{user}" LOGIN {pw};', f'CREATE DATABASE "{db}" OWNER "{user}";',
                    f'REVOKE ALL ON DATABASE "{db}" FROM PUBLIC;']
        self.pg.psql("\n".join(sql))
        say(f"  databases and roles: by this test's SQL (the chart renders no bootstrap Job): "
            f"{', '.join(sorted(roles))}")

    # ---- running -------------------------------------------------------------------------------------------------
    def run_job(self, label: str, limit: float = 180) -> bool:
        obj = next(w for w in self.workloads if f"{w['kind']}/{w['metadata']['name']}" == label)
        spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
        attempts = min(int(spec.get("backoffLimit", 6)), 3) + 1
        for container in self.by_workload.get(label, []):
            started = time.monotonic()
            for attempt in range(1, attempts + 1):
                container.start()
                try:
                    code = container.proc.wait(limit)
                except subprocess.TimeoutExpired:
                    container.kill()
                    self.fail(f"{label}: still running after {limit:.0f} s\n{container.tail()}")
                    return False
                if code == 0:
                    say(f"  job      {label:44} {container.binary.name} exit 0 in "
                        f"{time.monotonic() - started:5.1f} s (attempt {attempt})")
                    break
                time.sleep(min(2 ** attempt, 5))
            else:
                self.fail(f"{label}: {container.binary.name} failed {attempts} times (exit {code}): {container.reason()}"
                          f"\n{container.tail()}")
                return False
        return True

    def start_deployments(self) -> list[Container]:
        started = []
        for c in self.containers:
            if c.kind == "Deployment":
                c.start()
                ports = ", ".join(f"{n} {p}→{c.local.get(p)}" for n, p in c.ports.items())
                say(f"  started  {c.workload:44} {c.binary.name} pid {c.proc.pid} ({ports})")
                started.append(c)
        return started

    def wait_ready(self, containers: list[Container]) -> None:
        pending = {id(c): c for c in containers}
        phase = {id(c): "startupProbe" for c in containers}
        next_restart: dict[int, float] = {}
        limits = {}
        for c in containers:
            s = c.probes.get("startupProbe") or {}
            limits[id(c)] = min(180.0, s.get("initialDelaySeconds", 0) + s.get("periodSeconds", 10)
                                * s.get("failureThreshold", 3) + 30)
            if "readinessProbe" not in c.probes:
                self.fail(f"{c.workload}: declares no readinessProbe")
        last: dict[int, str] = {}
        while pending:
            now = time.monotonic()
            for key, c in list(pending.items()):
                if not c.running():
                    if key not in next_restart:
                        c.restarts += 1
                        if c.restarts >= 5:
                            self.fail(f"{c.workload}: crash loop, exited {c.restarts} times (last exit "
                                      f"{c.proc.returncode}): {c.reason()}\n{c.tail()}")
                            del pending[key]
                            continue
                        next_restart[key] = now + 0.5 * 2 ** c.restarts
                    elif now >= next_restart[key]:
                        del next_restart[key]
                        c.start_time_first = getattr(c, "start_time_first", c.started)
                        c.start()
                    continue
                if now - getattr(c, "start_time_first", c.started) > limits[key]:
                    self.fail(f"{c.workload}: not ready after {limits[key]:.0f} s ({phase[key]} "
                              f"{probes.describe(c.probes.get(phase[key], {}))}: {last.get(key)})\n{c.tail()}")
                    del pending[key]
                    continue
                probe = c.probes.get(phase[key])
                if probe is None:
                    ok, seen = (now - c.started > 3), "no probe: up 3 s"
                else:
                    ok, seen = probes.check(c, probe)
                last[key] = seen
                if not ok:
                    continue
                if phase[key] == "startupProbe":
                    phase[key] = "readinessProbe"
                    continue
                del pending[key]
                first = getattr(c, "start_time_first", c.started)
                extra = []
                live = c.probes.get("livenessProbe")
                if live:
                    ok, seen = probes.check(c, live)
                    extra.append(f"liveness {'ok' if ok else seen}")
                    if not ok:
                        self.fail(f"{c.workload}: ready but its livenessProbe ({probes.describe(live)}) fails: {seen}")
                if "metrics" in c.ports:
                    url = f"http://127.0.0.1:{c.local[c.ports['metrics']]}/metrics"
                    try:
                        with urllib.request.urlopen(url, timeout=3) as r:
                            extra.append(f"metrics {r.status}")
                    except OSError as error:
                        self.fail(f"{c.workload}: declares a metrics port, GET /metrics: {error}")
                if c.restarts:
                    extra.append(f"{c.restarts} restart(s)")
                what = probes.describe(c.probes["readinessProbe"]) if "readinessProbe" in c.probes else "no probe"
                say(f"  ready    {c.workload:44} in {time.monotonic() - first:5.1f} s ({what}; {', '.join(extra)})")
            time.sleep(0.2)

    def shutdown(self) -> None:
        running = [c for c in self.containers if c.kind == "Deployment" and c.running()]
        results: dict[int, str] = {}

        def stop(c: Container) -> None:
            began = time.monotonic()
            pre = c.pre_stop or {}
            if "exec" in pre:
                argv = pre["exec"]["command"]
                if Path(argv[0]).name == "sleep":
                    time.sleep(float(argv[1]))
                else:
                    subprocess.run([str(self.bin_dir / Path(argv[0]).name), *argv[1:]], env=c.env, timeout=c.grace)
            elif "sleep" in pre:
                time.sleep(float(pre["sleep"]["seconds"]))
            elif "httpGet" in pre:
                probes.check(c, {"httpGet": pre["httpGet"], "timeoutSeconds": c.grace})
            c.proc.send_signal(signal.SIGTERM)
            try:
                code = c.proc.wait(max(0.1, c.grace - (time.monotonic() - began)))
                took = time.monotonic() - began
                how = f"exit {code}" if code >= 0 else f"killed by {signal.Signals(-code).name}"
                results[id(c)] = f"{how} in {took:5.2f} s (grace {c.grace} s{', preStop included' if pre else ''})"
            except subprocess.TimeoutExpired:
                c.kill()
                results[id(c)] = "FAIL"
                self.fail(f"{c.workload}: still running {c.grace} s after SIGTERM (terminationGracePeriodSeconds)"
                          f"\n{c.tail()}")

        threads = [threading.Thread(target=stop, args=(c,)) for c in running]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for c in running:
            if results.get(id(c)) != "FAIL":
                say(f"  shutdown {c.workload:44} SIGTERM: {results.get(id(c))}")

    def main(self) -> None:
        self.prepare()
        if self.failures:
            return
        self.create_databases()
        labels = {f"{w['kind']}/{w['metadata']['name']}": w for w in self.workloads}
        pre = sorted((w for w in self.workloads if w["kind"] == "Job" and {"pre-install"} & set(hooks(w))), key=weight)
        post = sorted((w for w in self.workloads if w["kind"] == "Job" and {"post-install"} & set(hooks(w))), key=weight)
        plain = [w for w in self.workloads if w["kind"] == "Job" and not hooks(w)]
        for w in pre:
            if not self.run_job(f"Job/{w['metadata']['name']}"):
                return
        started = self.start_deployments()
        for w in plain + post:
            self.run_job(f"Job/{w['metadata']['name']}")
        t0 = time.monotonic()
        self.wait_ready(started)
        if not all(c.running() for c in started):
            return
        say(f"  all {len(started)} Deployments ready ({time.monotonic() - t0:.1f} s after the post-install hooks)")
        gateway = self.mapper.hosts.get((f"{RELEASE}-gateway", 8080))
        if gateway is None:
            self.fail("no Service id77-gateway:8080 to run the journey through")
            return
        hosted = self.hosted[0] if self.hosted else None
        try:
            result = journey.run(f"http://127.0.0.1:{gateway[1]}", DEMO_PASSWORD, hosted, self.endpoint)
            say(f"  journey  {result}")
        except journey.JourneyError as error:
            # The one line names the warnings the services logged meanwhile (the likely cause).
            causes = [f"{c.workload}: {c.reason()}" for c in started if c.reason().startswith(("WARN", "ERROR"))]
            self.fail(f"journey: {error}" + (f"; {'; '.join(causes)}" if causes else ""))
        for label, w in labels.items():
            if w["kind"] == "CronJob":
                self.run_job(label)
        for c in started:
            if not c.running():
                self.fail(f"{c.workload}: exited during the run (exit {c.proc.returncode})\n{c.tail()}")

    def close(self) -> None:
        try:
            if any(c.kind == "Deployment" and c.running() for c in self.containers):
                self.shutdown()
        finally:
            for c in self.containers:
                c.kill()
            probes.close()
            for closer in reversed(self.closers):
                closer.close()
            if self.failures:
                keep = self.logs_dir / self.label
                shutil.rmtree(keep, ignore_errors=True)
                keep.mkdir(parents=True, exist_ok=True)
                for log in list(self.root.glob("pods/*/*/log.txt")) + [self.root / "nats.log",
                                                                        self.root / "postgres/server.log"]:
                    if log.exists():
                        name = "-".join(log.relative_to(self.root).parts[1:3]) if "pods" in log.parts else log.name
                        shutil.copy(log, keep / (name + (".log" if not name.endswith(".log") else "")))
                say(f"  logs kept in {keep}")
            shutil.rmtree(self.root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", action="append", choices=["default", "production"],
                        help="which values to run (default: both)")
    which = parser.parse_args().values or ["default", "production"]
    out = target_dir()
    bin_dir = out / "debug"
    for b in ("id77-membership", "id77-gateway", "id77-nats-config"):
        if not (bin_dir / b).exists():
            print(f"chart-run: {bin_dir / b} missing: run cargo build --workspace --bins", file=sys.stderr)
            return 1
    say(f"helm {helm.helm_sdk_version()}, binaries of {bin_dir}")
    runs = {"default": ("default values (helm/id77/values.yaml)", {}),
            "production": ("values-production.yaml", yaml.safe_load((CHART / "values-production.yaml").read_text()))}
    failures: list[str] = []
    for key in which:
        title, values = runs[key]
        say(f"\n== {title}")
        run = Run(key, values, bin_dir, out / "chart-run-logs")
        interrupted = None
        try:
            run.main()
        except (Missing, RuntimeError, OSError, helm.HelmError) as error:
            run.fail(f"{type(error).__name__}: {' '.join(str(error).split())}")
        except KeyboardInterrupt as error:
            interrupted = error
        finally:
            run.close()
        if interrupted:
            raise interrupted
        tls = {True: "PostgreSQL over TLS", False: "PostgreSQL without TLS", None: "stopped before PostgreSQL"}[run.tls]
        if run.nats_tls is not None:
            tls += ", NATS over TLS" if run.nats_tls else ", NATS without TLS"
        say(f"== {title}: {'passed' if not run.failures else f'{len(run.failures)} failure(s)'} ({tls})")
        failures += [f"{title}: {f.splitlines()[0]}" for f in run.failures]
    if failures:
        print(f"\nchart-run: {len(failures)} failure(s):", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    say(f"\nchart-run: {' and '.join(which)} values: every workload started, became ready, ran the journey and stopped in time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
