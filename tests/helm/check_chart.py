#!/usr/bin/env python3
"""Checks the Helm chart helm/id77 without a cluster, with real Helm.

Helm 4's own library (PyPI helm-python-sdk, libhelm_c over the Go SDK) lints the chart and renders it (which also
checks the values against values.schema.json) for the default values and for values-production.yaml; every
rendered object is validated against the Kubernetes OpenAPI schemas in strict mode (PyPI kubernetes-validate:
unknown fields are errors) for the oldest and the newest Kubernetes the chart supports. Then the properties that
matter are asserted: each service its own Deployment, Service, ServiceAccount, HPA, PDB and NetworkPolicy with
independent replicas and autoscaling; probes; no root; read-only root filesystem; capabilities dropped;
network policies that let only the gateway (and the callers of membership) reach a gRPC port; a checksum
annotation that changes with the configuration; values the schema must refuse. Prints the rendered objects per
service. Exit status 0 only if every check passed.

Run: python3 tests/helm/check_chart.py   (make helm-check installs the two packages first)
"""

from __future__ import annotations

import copy
import hashlib
import sys
from collections import defaultdict
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "id77"
RELEASE = "id77"
NAMESPACE = "id77"
# The chart's kubeVersion is >=1.27: validate against that and the newest schemas the package ships.
KUBE_VERSIONS = ["1.27.0", kubernetes_validate.utils.latest_version()]
# Custom resources: no upstream schema in kubernetes-validate; checked by hand below.
CUSTOM_KINDS = {"PrometheusRule"}
GRPC_SERVICES = ["membership", "catalogue", "requests", "routing", "billing"]
HTTP_SERVICES = ["gateway", "portal"]
ALL_SERVICES = GRPC_SERVICES + HTTP_SERVICES

failures: list[str] = []
checks = 0


def check(condition: bool, message: str) -> None:
    global checks
    checks += 1
    if not condition:
        failures.append(message)
        print(f"FAIL: {message}", file=sys.stderr)


def render(values: dict | None) -> list[dict]:
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects = []
    for path, text in sorted(manifests.items()):
        if not path.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append(doc)
    return objects


def lint(values: dict | None, label: str) -> None:
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    check(not report.get("errors"), f"{label}: helm lint errors {report.get('errors')}")
    check(not problems, f"{label}: helm lint (strict) findings {problems}")


def validate(objects: list[dict], label: str) -> None:
    for obj in objects:
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if obj.get("kind") in CUSTOM_KINDS:
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
                check(True, "")
            except kubernetes_validate.ValidationError as error:
                path = "/".join(str(p) for p in error.path)
                check(False, f"{label}: {name} invalid for Kubernetes {version} at {path}: {error.message}")
            except kubernetes_validate.utils.SchemaNotFoundError as error:
                check(False, f"{label}: {name}: {error.message}")


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def full(service: str) -> str:
    return f"{RELEASE}-{service}"


def component_of(obj: dict) -> str:
    return obj.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component", "(shared)")


def assert_properties(objects: list[dict], label: str, services: list[str]) -> None:
    deployments = by_kind(objects, "Deployment")
    hpas = by_kind(objects, "HorizontalPodAutoscaler")
    pdbs = by_kind(objects, "PodDisruptionBudget")
    svcs = by_kind(objects, "Service")
    accounts = by_kind(objects, "ServiceAccount")
    policies = by_kind(objects, "NetworkPolicy")
    config = by_kind(objects, "ConfigMap").get(f"{RELEASE}-config")
    check(config is not None, f"{label}: the shared ConfigMap exists")
    for service in services:
        name = full(service)
        where = f"{label}: {service}"
        dep = deployments.get(name)
        check(dep is not None, f"{where}: its own Deployment")
        check(name in svcs, f"{where}: its own Service")
        check(name in accounts, f"{where}: its own ServiceAccount")
        check(name in pdbs, f"{where}: its own PodDisruptionBudget")
        check(name in policies, f"{where}: its own NetworkPolicy")
        if dep is None:
            continue
        pod = dep["spec"]["template"]
        spec = pod["spec"]
        check(spec.get("serviceAccountName") == name, f"{where}: runs as its own ServiceAccount")
        check(spec.get("automountServiceAccountToken") is False, f"{where}: no API token mounted")
        hpa = hpas.get(name)
        if hpa is not None:
            check(hpa["spec"]["scaleTargetRef"]["name"] == name, f"{where}: the HPA scales its own Deployment")
            check("replicas" not in dep["spec"], f"{where}: replicas left to the HPA")
        else:
            check(isinstance(dep["spec"].get("replicas"), int), f"{where}: fixed replicas without an HPA")
        pdb = pdbs.get(name)
        if pdb is not None:
            check(
                pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"],
                f"{where}: the PDB selects its own pods",
            )
        annotations = pod["metadata"].get("annotations", {})
        check(len(annotations.get("checksum/config", "")) == 64, f"{where}: checksum/config annotation")
        psc = spec.get("securityContext", {})
        check(psc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot")
        check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: seccomp RuntimeDefault")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            sc = container.get("securityContext", {})
            check(sc.get("runAsNonRoot") is True, f"{where}: container runAsNonRoot")
            check(sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
            check(sc.get("allowPrivilegeEscalation") is False, f"{where}: no privilege escalation")
            check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities drop ALL")
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            check("emptyDir" in volumes.get(mounts.get("/tmp", ""), {}), f"{where}: /tmp is an emptyDir")
            check("resources" in container and "requests" in container["resources"], f"{where}: resources")
            env = {e["name"]: e for e in container.get("env", [])}
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            check(("metrics" in ports) == (service != "portal"), f"{where}: metrics port unless it serves none")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                check(probe in container, f"{where}: {probe}")
            if service in HTTP_SERVICES:
                check(container["readinessProbe"].get("httpGet", {}).get("port") == "http", f"{where}: HTTP probe")
            if service == "gateway":
                check("ID77_HTTP_ADDR" in env, f"{where}: listens where it is told")
                check(env.get("ID77_UPSTREAM_BALANCE", {}).get("value") == "dns", f"{where}: balances over the pods")
                headless = {n for n, o in svcs.items() if o["spec"].get("clusterIP") == "None"}
                for callee in GRPC_SERVICES:
                    if callee in services:
                        url = env.get(f"ID77_{callee.upper()}_URL", {}).get("value", "")
                        check(url.startswith(f"http://{full(callee)}-headless:"), f"{where}: reaches {callee}'s pods ({url})")
                        check(f"{full(callee)}-headless" in headless, f"{where}: {callee} has a headless Service")
                targets = env.get("ID77_OPERATIONS_METRICS", {}).get("value", "")
                for callee in (c for c in GRPC_SERVICES if c in services):
                    check(f"{callee}=http://{full(callee)}:9464/metrics" in targets.split(","),
                          f"{where}: reads {callee}'s outbox backlog from its metrics ({targets})")
            elif service == "portal":
                check("ID77_PORTAL_ADDR" in env, f"{where}: listens where it is told")
                check(env.get("ID77_GATEWAY_URL", {}).get("value") == f"http://{full('gateway')}:8080",
                      f"{where}: knows where the gateway is")
                db = env.get("ID77_DATABASE_URL", {}).get("value", "")
                check("/id77_portal" in db and "ID77_NATS_NKEY_FILE" not in env,
                      f"{where}: its own database for the sessions ({db}), no NATS")
            else:
                check(container["readinessProbe"].get("grpc", {}).get("port") == ports.get("grpc"), f"{where}: gRPC probe")
                check("ID77_DATABASE_URL" in env, f"{where}: its own database URL")
                db = env.get("ID77_DATABASE_URL", {}).get("value", "")
                check(f"/id77_{service}" in db, f"{where}: database id77_{service} ({db})")
                check("ID77_MEMBERSHIP_URL" in env or service == "membership", f"{where}: knows membership")
        # Network: only the gateway (and membership's callers) reach the gRPC port; egress is listed.
        policy = policies.get(name)
        if policy is None:
            continue
        check(set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}, f"{where}: policy in both directions")
        if service == "portal":
            egress_ports = {p.get("port") for rule in policy["spec"].get("egress", []) for p in rule.get("ports", [])}
            check({53, 8080, 5432} <= egress_ports <= {53, 8080, 5432, 4318},
                  f"{where}: egress only to DNS, the gateway, its database and the OTLP collector ({sorted(egress_ports)})")
            continue
        if service == "gateway":
            callers = set()
            for rule in policy["spec"].get("ingress", []):
                for peer in rule.get("from", []):
                    callers.add(peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component"))
            check("portal" in callers or not any("from" in r and any(p.get("port") == 8080 for p in r["ports"])
                                                 for r in policy["spec"]["ingress"]),
                  f"{where}: the portal reaches the gateway")
            egress_ports = {p.get("port") for rule in policy["spec"].get("egress", []) for p in rule.get("ports", [])}
            check(5432 not in egress_ports, f"{where}: no database ({sorted(egress_ports)})")
            check(4222 in egress_ports, f"{where}: NATS, for the live updates ({sorted(egress_ports)})")
            continue
        port = deployments[name]["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
        allowed = set()
        for rule in policy["spec"].get("ingress", []):
            if any(p.get("port") == port for p in rule.get("ports", [])):
                check("from" in rule, f"{where}: gRPC port not open to everyone")
                for peer in rule.get("from", []):
                    allowed.add(peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component"))
        expected = {"gateway"} | ({s for s in services if s not in (*HTTP_SERVICES, "membership")} if service == "membership" else set())
        # The reconciler's CronJob (ADR 0013), when enabled, reads membership, requests, routing and billing.
        if full("reconcile") in by_kind(objects, "CronJob") and service in ("membership", "requests", "routing", "billing"):
            expected.add("reconcile")
        check(allowed == expected, f"{where}: gRPC port reachable from {sorted(allowed)}, expected {sorted(expected)}")
        egress_ports = {p.get("port") for rule in policy["spec"].get("egress", []) for p in rule.get("ports", [])}
        check({53, 5432, 4222} <= egress_ports, f"{where}: egress to DNS, PostgreSQL, NATS ({sorted(egress_ports)})")
        check(all("to" in r for r in policy["spec"]["egress"] if 53 not in {p.get("port") for p in r.get("ports", [])}),
              f"{where}: every non-DNS egress rule names its peers")


def print_objects(objects: list[dict], label: str) -> None:
    groups: dict[str, list[str]] = defaultdict(list)
    for obj in objects:
        groups[component_of(obj)].append(f"{obj['kind']}/{obj['metadata']['name']}")
    print(f"\nRendered objects ({label}), per service:")
    for component in sorted(groups):
        print(f"  {component}: {', '.join(sorted(groups[component]))}")


def annotation(objects: list[dict], service: str, key: str) -> str:
    dep = by_kind(objects, "Deployment")[full(service)]
    return dep["spec"]["template"]["metadata"]["annotations"][key]


def main() -> int:
    print(f"helm {helm.helm_sdk_version()} (libhelm_c {helm.helm_c_version()}), kubernetes-validate "
          f"{kubernetes_validate.__version__}, Kubernetes schemas {', '.join(KUBE_VERSIONS)}")
    production = yaml.safe_load((CHART / "values-production.yaml").read_text())

    lint(None, "default values")
    lint(production, "production values")

    default_objects = render(None)
    production_objects = render(production)
    validate(default_objects, "default values")
    validate(production_objects, "production values")
    assert_properties(default_objects, "default values", ALL_SERVICES)
    assert_properties(production_objects, "production values", ALL_SERVICES)

    # Independent scaling: one service's replicas or autoscaling changes nothing of another's.
    scaled = render({"services": {"routing": {"autoscaling": {"enabled": False}, "replicaCount": 5}}})
    deps = by_kind(scaled, "Deployment")
    check(deps[full("routing")]["spec"].get("replicas") == 5, "routing alone at 5 replicas")
    check(full("routing") not in by_kind(scaled, "HorizontalPodAutoscaler"), "routing without HPA")
    check(full("billing") in by_kind(scaled, "HorizontalPodAutoscaler"), "billing keeps its HPA")
    check("replicas" not in deps[full("billing")]["spec"], "billing's replicas untouched")
    plain = render({"gateway": {"balanceUpstreams": False}})
    genv = {e["name"]: e.get("value") for e in by_kind(plain, "Deployment")[full("gateway")]["spec"]["template"]
            ["spec"]["containers"][0]["env"]}
    check("ID77_UPSTREAM_BALANCE" not in genv and genv.get("ID77_ROUTING_URL") == f"http://{full('routing')}:7054"
          and not [o for o in plain if o["kind"] == "Service" and o["spec"].get("clusterIP") == "None"],
          "without balancing: the gateway calls the Services, no headless Service")
    hpa = by_kind(production_objects, "HorizontalPodAutoscaler")
    check(hpa[full("gateway")]["spec"]["maxReplicas"] == 12 and hpa[full("catalogue")]["spec"]["maxReplicas"] == 8,
          "production: per-service HPA bounds")
    check(by_kind(production_objects, "Deployment")[full("billing")]["spec"].get("replicas") == 2,
          "production: billing at fixed replicas")

    # A single replica gets no PDB (it would block node drains); disabling a service removes all its objects.
    single = render({"services": {"catalogue": {"autoscaling": {"enabled": False}, "replicaCount": 1},
                                  "billing": {"enabled": False}}})
    check(full("catalogue") not in by_kind(single, "PodDisruptionBudget"), "no PDB for a single replica")
    check(not [o for o in single if component_of(o) == "billing"], "a disabled service renders nothing")
    check("ID77_BILLING_URL" not in {e["name"] for e in by_kind(single, "Deployment")[full("gateway")]["spec"]
                                     ["template"]["spec"]["containers"][0]["env"]}, "gateway not told of billing")

    # A new service is one values entry (e.g. a web portal behind the gateway, or another gRPC service).
    extra = render({"services": {"gateway": {"calls": GRPC_SERVICES + ["audit"]}, "audit": {"enabled": True, "kind": "grpc", "port": 7060, "calls": ["membership"],
                                           "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 3},
                                           "pdb": {"enabled": True},
                                           "database": {"name": "id77_audit", "user": "id77_audit"},
                                           "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}}})
    validate(extra, "with an extra service")
    assert_properties(extra, "with an extra service", ALL_SERVICES + ["audit"])

    # Config changes roll pods: the checksum follows the ConfigMap and the chart-made Secrets.
    changed = render({"log": {"level": "debug"}})
    check(annotation(changed, "routing", "checksum/config") != annotation(default_objects, "routing", "checksum/config"),
          "checksum/config changes with the configuration")
    secret = render({"services": {"billing": {"database": {"name": "id77_billing", "user": "id77_billing",
                                                           "password": "dev-only"}}}})
    check(annotation(secret, "billing", "checksum/secrets") != annotation(default_objects, "billing", "checksum/secrets"),
          "checksum/secrets changes with a chart-made Secret")
    env = {e["name"]: e for e in by_kind(secret, "Deployment")[full("billing")]["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    check(env.get("PGPASSWORD", {}).get("valueFrom", {}).get("secretKeyRef", {}).get("name") == f"{full('billing')}-db",
          "the database password comes from the service's own Secret")
    validate(secret, "with a chart-made Secret")

    # Production credentials: every service its own database Secret and NATS NKEY Secret; providers' Secrets.
    prod_deps = by_kind(production_objects, "Deployment")
    for service in GRPC_SERVICES:
        spec = prod_deps[full(service)]["spec"]["template"]["spec"]
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        check(env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"id77-{service}-db",
              f"production: {service} reads its database password from id77-{service}-db")
        check(env.get("ID77_NATS_NKEY_FILE", {}).get("value") == "/etc/id77/nats/nkey",
              f"production: {service} authenticates to NATS")
        # (The PostgreSQL and NATS CAs, public certificates shared by every service, are not credentials.)
        secrets = {v["secret"]["secretName"] for v in spec["volumes"]
                   if "secret" in v and v["name"] not in ("postgresql-ca", "nats-ca")}
        check(secrets == {f"id77-{service}-nats"}, f"production: {service} mounts only its own NATS Secret")
        check("sslmode=verify-full" in env["ID77_DATABASE_URL"]["value"], f"production: {service} TLS to PostgreSQL")
    # The gateway's live updates: its own (subscribe-only) NATS user.
    gspec = prod_deps[full("gateway")]["spec"]["template"]["spec"]
    genv = {e["name"]: e for e in gspec["containers"][0]["env"]}
    check(genv.get("ID77_NATS_NKEY_FILE", {}).get("value") == "/etc/id77/nats/nkey"
          and {v["secret"]["secretName"] for v in gspec["volumes"]
               if "secret" in v and v["name"] != "nats-ca"} == {"id77-gateway-nats"},
          "production: the gateway reads its live updates with its own NATS Secret")
    # Mail: the relay URL from a Secret, the portal's URL in the links, and an egress rule to the relay.
    mailed = render({"mail": {"smtpSecret": "id77-smtp", "portalUrl": "https://portail.id77.example.fr",
                              "relay": {"port": 587, "to": [{"ipBlock": {"cidr": "192.0.2.25/32"}}]}}})
    renv = {e["name"]: e for e in by_kind(mailed, "Deployment")[full("requests")]["spec"]["template"]["spec"]
            ["containers"][0]["env"]}
    check(renv.get("ID77_SMTP_URL", {}).get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "id77-smtp"
          and renv.get("ID77_PORTAL_URL", {}).get("value") == "https://portail.id77.example.fr",
          "mail: requests gets the relay URL from its Secret and the portal URL")
    rports = {p.get("port") for r in by_kind(mailed, "NetworkPolicy")[full("requests")]["spec"]["egress"]
              for p in r.get("ports", [])}
    check(587 in rports, f"mail: requests may reach the relay ({sorted(rports)})")
    menv = {e["name"]: e for e in by_kind(mailed, "Deployment")[full("membership")]["spec"]["template"]["spec"]
            ["containers"][0]["env"]}
    check(menv.get("ID77_SMTP_URL", {}).get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "id77-smtp"
          and menv.get("ID77_PORTAL_URL", {}).get("value") == "https://portail.id77.example.fr",
          "mail: membership (invitations, password resets) gets the relay URL and the portal URL")
    mports = {p.get("port") for r in by_kind(mailed, "NetworkPolicy")[full("membership")]["spec"]["egress"]
              for p in r.get("ports", [])}
    check(587 in mports, f"mail: membership may reach the relay ({sorted(mports)})")
    billing = prod_deps[full("billing")]["spec"]["template"]
    billing_env = {e["name"]: e.get("value") for e in billing["spec"]["containers"][0]["env"]}
    mounted = {m["mountPath"]: m["name"] for m in billing["spec"]["containers"][0]["volumeMounts"]}
    files_cm = by_kind(production_objects, "ConfigMap").get(f"{full('billing')}-files", {})
    check(billing_env.get("ID77_BILLING_ISSUERS") == "/etc/id77/files/issuers.json" and "/etc/id77/files" in mounted
          and "issuers.json" in files_cm.get("data", {}) and "checksum/files" in billing["metadata"]["annotations"],
          "production: billing's issuers file is mounted from its ConfigMap, and rolls the pods when it changes")
    hosted = prod_deps.get(full("provider-dr77"))
    check(hosted is not None, "production: dr77's hosted referral consumer")
    if hosted:
        vols = {v["secret"]["secretName"] for v in hosted["spec"]["template"]["spec"]["volumes"]
                if "secret" in v and v["name"] != "nats-ca"}
        check(vols == {"id77-provider-dr77"}, "production: dr77's consumer uses dr77's Secret only")
    job = by_kind(production_objects, "Job").get(full("nats-config"))
    check(job is not None and "--provider=caue77" in job["spec"]["template"]["spec"]["containers"][0]["command"],
          "production: a hook Job creates the providers' durable consumers")
    ingress = by_kind(production_objects, "Ingress").get(RELEASE)
    backends = {r["host"]: r["http"]["paths"][0]["backend"]["service"]["name"] for r in (ingress or {}).get("spec", {}).get("rules", [])}
    check(backends == {"api.id77.example.fr": full("gateway"), "portail.id77.example.fr": full("portal")},
          f"production: the Ingress routes the API to the gateway and the portal's host to the portal ({backends})")
    gateway_policy = by_kind(production_objects, "NetworkPolicy")[full("gateway")]
    open_rules = [r for r in gateway_policy["spec"]["ingress"] if "from" not in r]
    check(not open_rules, "production: the gateway is reachable only from the ingress controller and the portal")
    # GET /v1/operations: the gateway reaches each gRPC service's metrics port, which lets it in.
    policies = by_kind(production_objects, "NetworkPolicy")
    for callee in GRPC_SERVICES:
        egress = [r for r in gateway_policy["spec"]["egress"]
                  if any(p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == callee
                         for p in r.get("to", []))]
        ports = {p.get("port") for r in egress for p in r.get("ports", [])}
        check(9464 in ports, f"production: the gateway may reach {callee}'s metrics port ({ports})")
        froms = [p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
                 for r in policies[full(callee)]["spec"]["ingress"]
                 if any(p.get("port") == 9464 for p in r.get("ports", [])) for p in r.get("from", [])]
        check("gateway" in froms, f"production: {callee}'s metrics port lets the gateway in ({froms})")
    try:
        render({"ingress": {"enabled": True, "hosts": [{"host": "x", "paths": [{"path": "/", "service": "routing"}]}]}})
        check(False, "the Ingress refuses a non-public backend")
    except helm.HelmError:
        check(True, "")
    check(f"{RELEASE}-dashboard" in by_kind(production_objects, "ConfigMap"), "production: Grafana dashboard ConfigMap")

    # Optional PrometheusRule: a well-formed custom resource with the alert rules.
    rules = render({"metrics": {"prometheusRule": {"enabled": True}}})
    rule = by_kind(rules, "PrometheusRule").get(RELEASE)
    alerts = [r.get("alert") for g in (rule or {}).get("spec", {}).get("groups", []) for r in g.get("rules", [])]
    check({"ID77OutboxBacklogGrowing", "ID77ConsumerStuck", "ID77HighErrorRate"} <= set(alerts),
          f"PrometheusRule carries the alert rules ({alerts})")

    # The chart's copies of the dashboard and alert rules are deploy/'s.
    for chart_file, source in [("files/grafana/id77.json", "deploy/grafana/id77.json"),
                               ("files/prometheus/alerts.yaml", "deploy/prometheus/alerts.yaml")]:
        a = hashlib.sha256((CHART / chart_file).read_bytes()).hexdigest()
        b = hashlib.sha256((ROOT / source).read_bytes()).hexdigest()
        check(a == b, f"helm/id77/{chart_file} is a copy of {source}")

    # Values the schema refuses (Helm checks values.schema.json when rendering).
    bad_values = {
        "unknown kind": {"services": {"gateway": {"kind": "ftp"}}},
        "root": {"securityContext": {"runAsNonRoot": False}},
        "writable root": {"securityContext": {"readOnlyRootFilesystem": False}},
        "unknown service key": {"services": {"routing": {"replicas": 3}}},
        "bad database name": {"services": {"routing": {"database": {"name": "id77-routing", "user": "x"}}}},
        "unknown top-level key": {"component": {}},
    }
    for label, values in bad_values.items():
        try:
            render(copy.deepcopy(values))
            check(False, f"schema should refuse: {label}")
        except helm.HelmValuesError:
            check(True, "")

    check_reconcile(default_objects, production_objects)
    check_postgresql_tls(default_objects, production_objects)
    check_portal_sessions(default_objects, production_objects)
    check_probes(default_objects, production_objects)
    check_bootstrap(default_objects, production_objects)
    check_official_nats_chart(production_objects)
    check_nats_tls(default_objects, production_objects)
    print_objects(default_objects, "default values")
    print_objects(production_objects, "values-production.yaml")
    kinds = defaultdict(int)
    for obj in default_objects:
        kinds[obj["kind"]] += 1
    print(f"\n{len(default_objects)} objects with the default values ({dict(sorted(kinds.items()))}), "
          f"{len(production_objects)} with values-production.yaml")
    if failures:
        print(f"\nhelm-check: {checks - len(failures)} passed, {len(failures)} failed", file=sys.stderr)
        return 1
    print(f"helm-check: {checks} passed, 0 failed")
    return 0



def check_reconcile(default_objects: list[dict], production_objects: list[dict]) -> None:
    """The reconciler's CronJob (ADR 0013): off by default; in production it runs `id77-admin reconcile` with the
    four services' addresses and a coordinator's credentials from a Secret, as the other pods do (non-root,
    read-only root), and the network policies let it reach those services and nothing else."""
    check(not by_kind(default_objects, "CronJob"), "default values: no reconciler CronJob")
    cron = by_kind(production_objects, "CronJob").get(full("reconcile"))
    check(cron is not None, "production: a reconciler CronJob")
    if cron is None:
        return
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    check(container["command"] == ["id77-admin", "reconcile"], f"reconcile command: {container['command']}")
    env = {e["name"]: e for e in container.get("env", [])}
    for service, port in [("membership", 7051), ("requests", 7053), ("routing", 7054), ("billing", 7055)]:
        want = f"http://{full(service)}:{port}"
        got = env.get(f"ID77_{service.upper()}_URL", {}).get("value")
        check(got == want, f"reconcile: ID77_{service.upper()}_URL is {got!r}, not {want!r}")
    for key in ("ID77_ADMIN_EMAIL", "ID77_ADMIN_PASSWORD"):
        ref = env.get(key, {}).get("valueFrom", {}).get("secretKeyRef", {})
        check(ref.get("name") == "id77-reconcile", f"reconcile: {key} from the id77-reconcile Secret ({ref})")
    check(pod.get("restartPolicy") == "Never" and cron["spec"].get("concurrencyPolicy") == "Forbid",
          "reconcile: one run at a time, never restarted in place")
    check(container["securityContext"].get("readOnlyRootFilesystem") is True, "reconcile: read-only root")
    check(pod["securityContext"].get("runAsNonRoot") is True, "reconcile: non-root")
    policies = by_kind(production_objects, "NetworkPolicy")
    own = policies.get(full("reconcile"))
    check(own is not None, "reconcile: a NetworkPolicy of its own")
    if own:
        ports = sorted(p["port"] for rule in own["spec"]["egress"] for p in rule.get("ports", []) if p["port"] != 53)
        check(ports == [7051, 7053, 7054, 7055], f"reconcile: egress only to the four services ({ports})")
    for service in ("membership", "requests", "routing", "billing"):
        policy = policies.get(full(service), {})
        sources = [
            peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
            for rule in policy.get("spec", {}).get("ingress", [])
            for peer in rule.get("from", [])
        ]
        check("reconcile" in sources, f"{service}: its NetworkPolicy lets the reconciler in ({sources})")
    catalogue = policies.get(full("catalogue"), {})
    check(
        all(
            peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") != "reconcile"
            for rule in catalogue.get("spec", {}).get("ingress", [])
            for peer in rule.get("from", [])
        ),
        "catalogue: the reconciler has no business there",
    )


PG_CA_FILE = "/etc/id77/postgresql/ca.crt"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


def pod_spec(obj: dict) -> dict:
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def database_clients(objects: list[dict]) -> dict[str, tuple[dict, dict]]:
    """Every workload container that connects to PostgreSQL (a postgres:// URL in its environment), with its pod."""
    out = {}
    for obj in objects:
        if obj.get("kind") not in WORKLOAD_KINDS:
            continue
        pod = pod_spec(obj)
        for container in pod.get("initContainers", []) + pod["containers"]:
            env = container.get("env", [])
            if any(e["name"] in ("ID77_DATABASE_URL", "ID77_PG_URL")
                   or str(e.get("value", "")).startswith(("postgres://", "postgresql://")) for e in env):
                out[f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"] = (pod, container)
    return out


def postgresql_ca(pod: dict, container: dict) -> tuple[str | None, dict | None, dict | None]:
    """The container's ID77_DATABASE_CA_FILE, its postgresql-ca mount and the pod's postgresql-ca volume."""
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    mount = next((m for m in container.get("volumeMounts", []) if m["name"] == "postgresql-ca"), None)
    volume = next((v for v in pod.get("volumes", []) if v["name"] == "postgresql-ca"), None)
    return env.get("ID77_DATABASE_CA_FILE"), mount, volume


def check_postgresql_tls(default_objects: list[dict], production_objects: list[dict]) -> None:
    """PostgreSQL over TLS: production mounts the database's CA into every workload that connects to PostgreSQL
    and passes it as ID77_DATABASE_CA_FILE with sslmode=verify-full; the defaults mount nothing; a service may
    name its own CA (Secret or ConfigMap); the schema refuses a CA with an sslmode that would not check it."""
    clients = database_clients(production_objects)
    for service in GRPC_SERVICES:
        check(f"Deployment/{full(service)}/{service}" in clients, f"postgresql tls: {service} has a database URL")
    for where, (pod, container) in clients.items():
        ca_file, mount, volume = postgresql_ca(pod, container)
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        url = env.get("ID77_DATABASE_URL") or env.get("ID77_PG_URL") or next(
            (str(v) for v in env.values() if str(v).startswith(("postgres://", "postgresql://"))), "")
        check("sslmode=verify-full" in url, f"production: {where} asks PostgreSQL for verify-full ({url})")
        check(ca_file == PG_CA_FILE, f"production: {where} gets ID77_DATABASE_CA_FILE={PG_CA_FILE} ({ca_file}); a "
              "workload that connects to PostgreSQL includes the id77.postgresqlCa* helpers (_postgresql.tpl)")
        check(mount is not None and mount.get("mountPath") == "/etc/id77/postgresql" and mount.get("readOnly") is True,
              f"production: {where} mounts the PostgreSQL CA read-only at /etc/id77/postgresql ({mount})")
        secret = (volume or {}).get("secret", {})
        check(secret.get("secretName") == "id77-postgresql-ca"
              and secret.get("items") == [{"key": "ca.crt", "path": "ca.crt"}],
              f"production: {where} takes the CA from the Secret id77-postgresql-ca, key ca.crt ({volume})")
    for obj in production_objects + default_objects:
        if obj.get("kind") in WORKLOAD_KINDS:
            pod = pod_spec(obj)
            for container in pod["containers"]:
                where = f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"
                if where not in clients or obj in default_objects:
                    check(postgresql_ca(pod, container) == (None, None, None),
                          f"postgresql tls: no CA for {where}, which has no database or no CA configured")

    # A service's own CA from a ConfigMap (another key); the others keep the shared Secret.
    values = yaml.safe_load((CHART / "values-production.yaml").read_text())
    values["services"]["billing"]["database"]["tls"] = {"caConfigMap": "billing-pg-ca", "caKey": "root.pem"}
    own = database_clients(render(values))
    _, _, volume = postgresql_ca(*own[f"Deployment/{full('billing')}/billing"])
    check((volume or {}).get("configMap", {}).get("name") == "billing-pg-ca"
          and volume["configMap"].get("items") == [{"key": "root.pem", "path": "ca.crt"}],
          f"postgresql tls: billing's own CA from its ConfigMap ({volume})")
    _, _, volume = postgresql_ca(*own[f"Deployment/{full('routing')}/routing"])
    check((volume or {}).get("secret", {}).get("secretName") == "id77-postgresql-ca",
          f"postgresql tls: routing keeps the shared CA ({volume})")
    # The shared CA from a ConfigMap.
    shared = database_clients(render({"postgresql": {"params": "sslmode=verify-ca",
                                                     "tls": {"caConfigMap": "pg-ca"}}}))
    for where, (pod, container) in shared.items():
        ca_file, mount, volume = postgresql_ca(pod, container)
        check(ca_file == PG_CA_FILE and mount is not None
              and (volume or {}).get("configMap", {}).get("items") == [{"key": "ca.crt", "path": "ca.crt"}]
              and volume["configMap"].get("name") == "pg-ca",
              f"postgresql tls: {where} takes the shared CA from the ConfigMap pg-ca ({volume})")

    refused = {
        "a CA Secret and a CA ConfigMap": {"postgresql": {"params": "sslmode=verify-full",
                                                          "tls": {"caSecret": "a", "caConfigMap": "b"}}},
        "a CA without sslmode": {"postgresql": {"tls": {"caSecret": "a"}}},
        "a CA with sslmode=require": {"postgresql": {"params": "sslmode=require", "tls": {"caSecret": "a"}}},
        "an unknown postgresql.tls key": {"postgresql": {"tls": {"ca": "a"}}},
        "an unknown database.tls key": {"services": {"routing": {"database": {"name": "x", "user": "x",
                                                                             "tls": {"secret": "a"}}}}},
    }
    for label, bad in refused.items():
        try:
            render(copy.deepcopy(bad))
            check(False, f"schema should refuse: {label}")
        except helm.HelmValuesError:
            check(True, "")


def check_portal_sessions(default_objects: list[dict], production_objects: list[dict]) -> None:
    """Portal sessions in PostgreSQL (issue 16, item 6; ADR 0009 addendum): the portal has its own database
    (ID77_DATABASE_URL to id77_portal, its password from id77-portal-db in production, egress to PostgreSQL),
    scales like the other workloads (an HPA from 2 pods, a PDB), and nothing pins a browser to a pod: no Service
    session affinity, no cookie affinity at the production Ingress."""
    name = full("portal")
    for label, objects in (("default values", default_objects), ("production values", production_objects)):
        where = f"{label}: portal sessions"
        dep = by_kind(objects, "Deployment").get(name)
        check(dep is not None, f"{where}: a Deployment")
        if dep is None:
            continue
        env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        url = env.get("ID77_DATABASE_URL", {}).get("value", "")
        check(url.startswith("postgres://id77_portal@") and "/id77_portal" in url,
              f"{where}: ID77_DATABASE_URL names the portal's own database and user ({url})")
        hpa = by_kind(objects, "HorizontalPodAutoscaler").get(name)
        check(hpa is not None and hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"],
              f"{where}: an HPA from at least 2 pods ({(hpa or {}).get('spec')})")
        check("replicas" not in dep["spec"], f"{where}: replicas left to the HPA")
        check(name in by_kind(objects, "PodDisruptionBudget"), f"{where}: a PDB")
        service = by_kind(objects, "Service").get(name, {})
        check(service.get("spec", {}).get("sessionAffinity", "None") == "None",
              f"{where}: no Service session affinity ({service.get('spec', {}).get('sessionAffinity')})")
        egress = {p.get("port") for r in by_kind(objects, "NetworkPolicy")[name]["spec"].get("egress", [])
                  for p in r.get("ports", [])}
        check(5432 in egress, f"{where}: may reach PostgreSQL ({sorted(egress)})")
    prod = by_kind(production_objects, "Deployment").get(name)
    if prod is not None:
        env = {e["name"]: e for e in prod["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        check(env.get("PGPASSWORD", {}).get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "id77-portal-db",
              "production: the portal reads its database password from id77-portal-db")
        check(by_kind(production_objects, "HorizontalPodAutoscaler").get(name, {}).get("spec", {}).get("minReplicas", 0) >= 3,
              "production: the portal's HPA keeps at least 3 pods")
    ingress = by_kind(production_objects, "Ingress").get(RELEASE, {})
    sticky = sorted(k for k in ingress.get("metadata", {}).get("annotations", {})
                    if "affinity" in k or "session-cookie" in k)
    check(ingress != {} and not sticky, f"production: the Ingress pins no browser to a pod ({sticky})")


def check_probes(default_objects: list[dict], production_objects: list[dict]) -> None:
    """Probes (issue 16): a gRPC service's liveness (and startup) asks the health name that depends on the process
    alone, its readiness the overall status that follows PostgreSQL and NATS, so a dependency's outage takes pods
    out of the Services without restarting them; the HTTP services' liveness is /healthz. A hosted referral
    consumer gets /livez and /readyz probes on its health port (the address its CLI is given) and a
    PodDisruptionBudget. The names are those the binaries use."""
    grpc_rs = (ROOT / "services" / "platform" / "src" / "grpc.rs").read_text()
    liveness_in_code = grpc_rs.split('pub const LIVENESS: &str = "', 1)[-1].split('"', 1)[0]
    cli_rs = (ROOT / "services" / "referral-consumer" / "src" / "cli.rs").read_text()
    check('env = "ID77_HEALTH_ADDR"' in cli_rs, "referral consumer: its CLI reads ID77_HEALTH_ADDR (--health-addr)")
    for label, objects in (("default values", default_objects), ("production values", production_objects)):
        deps = by_kind(objects, "Deployment")
        for service in GRPC_SERVICES:
            container = deps[full(service)]["spec"]["template"]["spec"]["containers"][0]
            live = container["livenessProbe"].get("grpc", {})
            ready = container["readinessProbe"].get("grpc", {})
            start = container["startupProbe"].get("grpc", {})
            where = f"{label}: {service}"
            check(live.get("service") == liveness_in_code and liveness_in_code,
                  f"{where}: liveness asks the process-only health name {liveness_in_code!r} ({live})")
            check(start.get("service") == liveness_in_code, f"{where}: startup asks the liveness name ({start})")
            check(ready.get("port") == live.get("port") and not ready.get("service"),
                  f"{where}: readiness asks the overall status, which follows PostgreSQL and NATS ({ready})")
            check(container["livenessProbe"] != container["readinessProbe"], f"{where}: liveness differs from readiness")
        for service in HTTP_SERVICES:
            container = deps[full(service)]["spec"]["template"]["spec"]["containers"][0]
            path = container["livenessProbe"].get("httpGet", {}).get("path")
            check(path == "/healthz", f"{label}: {service} liveness on /healthz ({path})")
        consumers = [d for name, d in deps.items() if name.startswith(full("provider-"))]
        pdbs = by_kind(objects, "PodDisruptionBudget")
        for deployment in consumers:
            name = deployment["metadata"]["name"]
            where = f"{label}: hosted consumer {name}"
            pod = deployment["spec"]["template"]["spec"]
            container = pod["containers"][0]
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            port = ports.get("health")
            check(port is not None and env.get("ID77_HEALTH_ADDR") == f"0.0.0.0:{port}",
                  f"{where}: serves its health endpoint on its health port ({env.get('ID77_HEALTH_ADDR')}, {ports})")
            for probe, path in (("startupProbe", "/livez"), ("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
                get = container.get(probe, {}).get("httpGet", {})
                check(get.get("path") == path and get.get("port") == "health", f"{where}: {probe} GET {path} ({get})")
            check(pod.get("terminationGracePeriodSeconds", 0) >= 10, f"{where}: a grace period for its bounded stop")
            pdb = pdbs.get(name)
            check(pdb is not None, f"{where}: a PodDisruptionBudget")
            if pdb:
                check(pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"],
                      f"{where}: its PodDisruptionBudget selects its pods")
                check(pdb["spec"].get("maxUnavailable") == 1, f"{where}: one pod at a time, never a blocked drain")
        if label == "production values":
            check(len(consumers) == 1, f"{label}: one hosted consumer ({[d['metadata']['name'] for d in consumers]})")
        else:
            check(not consumers and not [n for n in pdbs if n.startswith(full("provider-"))],
                  f"{label}: no hosted consumer, no consumer PDB")


def check_bootstrap(default_objects: list[dict], production_objects: list[dict]) -> None:
    """Database bootstrap (issue 16, item 4; docs/bootstrap.md): off by default; in production a pre-install and
    pre-upgrade hook Job runs `id77-admin bootstrap-db` for every service with a database, as the administrator
    (password from bootstrap.adminSecret) on the services' PostgreSQL server with their TLS settings, each service's
    password mounted as a file from its own Secret; it reads nothing the chart makes (a hook runs first), runs like
    job-ensure-consumers.yaml (non-root, read-only root, capabilities dropped, no service account token), and its
    NetworkPolicy lets it reach PostgreSQL (and DNS) only."""
    name = full("bootstrap")
    check(name not in by_kind(default_objects, "Job"), "default values: no bootstrap Job")
    check(name not in by_kind(default_objects, "NetworkPolicy"), "default values: no bootstrap NetworkPolicy")
    job = by_kind(production_objects, "Job").get(name)
    check(job is not None, "production: a bootstrap Job")
    if job is None:
        return
    hooks = set(job["metadata"].get("annotations", {}).get("helm.sh/hook", "").split(","))
    check(hooks == {"pre-install", "pre-upgrade"}, f"bootstrap: a pre-install and pre-upgrade hook ({hooks})")
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    command = container["command"]
    production = yaml.safe_load((CHART / "values-production.yaml").read_text())
    with_db = sorted(s for s, v in production["services"].items() if v.get("database"))
    check(set(GRPC_SERVICES) <= set(with_db), f"bootstrap: every gRPC service has a database ({with_db})")
    expected = ["id77-admin", "bootstrap-db", "--password-dir=/etc/id77/bootstrap/db"] + [
        f"--service={s}=id77_{s}:id77_{s}" for s in with_db]
    check(command == expected, f"bootstrap command: {command}, expected {expected}")
    env = {e["name"]: e for e in container.get("env", [])}
    admin_url = env.get("ID77_BOOTSTRAP_ADMIN_URL", {}).get("value", "")
    check(admin_url == "postgres://id77_admin@pg.db.example.fr:5432/postgres?sslmode=verify-full",
          f"bootstrap: the administrator on the services' server, verify-full ({admin_url})")
    ref = env.get("PGPASSWORD", {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(ref == {"name": "id77-postgresql-admin", "key": "password"},
          f"bootstrap: the administrator's password from id77-postgresql-admin ({ref})")
    check(env.get("ID77_DATABASE_CA_FILE", {}).get("value") == "/etc/id77/postgresql/ca.crt",
          "bootstrap: the services' PostgreSQL CA")
    check("envFrom" not in container, "bootstrap: reads no ConfigMap of the chart (a pre-install hook runs first)")
    mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for service in with_db:
        mount = mounts.get(f"db-{service}", {})
        secret = volumes.get(f"db-{service}", {}).get("secret", {})
        check(mount.get("mountPath") == f"/etc/id77/bootstrap/db/{service}" and mount.get("readOnly") is True
              and secret.get("secretName") == f"id77-{service}-db"
              and secret.get("items") == [{"key": "password", "path": "password"}],
              f"bootstrap: {service}'s password from id77-{service}-db as <dir>/{service}/password ({mount}, {secret})")
    secrets = {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
    check(secrets == {f"id77-{s}-db" for s in with_db} | {"id77-postgresql-ca"},
          f"bootstrap: mounts the services' database Secrets and the CA, nothing else ({sorted(secrets)})")
    # The same pod security as the ensure-consumers hook Job.
    consumers = by_kind(production_objects, "Job").get(full("nats-config"))
    if consumers:
        other = consumers["spec"]["template"]["spec"]
        check(pod.get("securityContext") == other.get("securityContext")
              and container.get("securityContext") == other["containers"][0].get("securityContext"),
              "bootstrap: the ensure-consumers Job's pod and container security settings")
    security = container.get("securityContext", {})
    check(pod.get("securityContext", {}).get("runAsNonRoot") is True and security.get("runAsNonRoot") is True,
          "bootstrap: non-root")
    check(security.get("readOnlyRootFilesystem") is True and security.get("allowPrivilegeEscalation") is False
          and security.get("capabilities", {}).get("drop") == ["ALL"],
          "bootstrap: read-only root, no privilege escalation, capabilities dropped")
    check(pod.get("automountServiceAccountToken") is False and pod.get("restartPolicy") == "Never"
          and job["spec"].get("activeDeadlineSeconds", 0) > 0,
          "bootstrap: no service account token, never restarted in place, a deadline")
    policy = by_kind(production_objects, "NetworkPolicy").get(name)
    check(policy is not None, "bootstrap: a NetworkPolicy of its own")
    if policy:
        spec = policy["spec"]
        hooks = set(policy["metadata"].get("annotations", {}).get("helm.sh/hook", "").split(","))
        check(hooks == {"pre-install", "pre-upgrade"}
              and int(policy["metadata"]["annotations"].get("helm.sh/hook-weight", "0"))
              < int(job["metadata"]["annotations"].get("helm.sh/hook-weight", "0")),
              "bootstrap: its NetworkPolicy is a hook created before the Job")
        check(spec.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "bootstrap"
              and set(spec.get("policyTypes", [])) == {"Ingress", "Egress"} and spec.get("ingress") == [],
              "bootstrap: nothing may connect to the bootstrap pod")
        other_rules = [r for r in spec.get("egress", []) if {p["port"] for p in r.get("ports", [])} != {53}]
        check(len(other_rules) == 1 and [p["port"] for p in other_rules[0]["ports"]] == [5432]
              and other_rules[0].get("to") == production["networkPolicy"]["postgresql"]["to"],
              f"bootstrap: egress to PostgreSQL only, besides DNS ({other_rules})")
    # A hook runs before the chart's own Secrets exist: a chart-made password cannot be read, and is refused.
    values = copy.deepcopy(production)
    values["services"]["routing"]["database"] = {"name": "id77_routing", "user": "id77_routing",
                                                 "password": "dev-only"}
    for label, bad in [("a chart-made database Secret", values),
                       ("no administrator Secret", {"bootstrap": {"enabled": True}})]:
        try:
            render(bad)
            check(False, f"bootstrap: refuses {label}")
        except helm.HelmError:
            check(True, "")


def check_official_nats_chart(production_objects: list[dict]) -> None:
    """deploy/nats/values.yaml, the values for the OFFICIAL NATS chart (nats-io/k8s `nats`) beside helm/id77, agrees
    with helm/id77's production values: 3 cluster nodes = ID77_STREAM_REPLICAS, JetStream file storage on PVCs with
    sync_interval always, the NATS URL(s) naming that chart's Service, namespace and port, a TLS-only client listener
    exposed to partners, and the authorization of `id77-nats-config generate` (run here, for the production
    providers) merged as the values' comment says (--set-file into configMap.merge.data, a `$include` of it) with
    every service's and provider's user. The official chart itself is NOT rendered: it is not in this repository
    (no vendoring) and nothing is downloaded at test time, so its templates are taken as documented."""
    import json
    import subprocess
    import tempfile
    from urllib.parse import urlsplit

    nats_values = yaml.safe_load((ROOT / "deploy" / "nats" / "values.yaml").read_text())
    production = yaml.safe_load((CHART / "values-production.yaml").read_text())
    config = nats_values.get("config", {})
    name, namespace = nats_values.get("fullnameOverride"), "nats"  # helm install nats nats/nats --namespace nats
    print("\nofficial NATS chart: deploy/nats/values.yaml checked against helm/id77 (the official chart itself is not "
          "rendered: not vendored, not fetched at test time)")

    # Three nodes, as many as every stream's replicas.
    cluster = config.get("cluster", {})
    data = by_kind(production_objects, "ConfigMap").get(f"{RELEASE}-config", {}).get("data", {})
    check(cluster.get("enabled") is True and cluster.get("replicas") == 3, f"NATS chart: a 3-node cluster ({cluster})")
    check(data.get("ID77_STREAM_REPLICAS") == str(cluster.get("replicas")),
          f"NATS chart: {cluster.get('replicas')} nodes = production ID77_STREAM_REPLICAS "
          f"({data.get('ID77_STREAM_REPLICAS')!r})")
    js = config.get("jetstream", {})
    store = js.get("fileStore", {})
    check(js.get("enabled") is True and store.get("enabled") is True and store.get("pvc", {}).get("enabled") is True
          and not js.get("memoryStore", {}).get("enabled"), f"NATS chart: JetStream file storage on PVCs ({js})")
    check(js.get("merge", {}).get("sync_interval") == "always", "NATS chart: JetStream sync_interval always")

    # The services' URLs name that chart's Service, in its namespace, on its client port.
    port = config.get("nats", {}).get("port", 4222)
    hosts = {name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"}
    urls = [u.strip() for u in data.get("ID77_NATS_URL", "").split(",") if u.strip()]
    check(bool(urls), "NATS chart: production ID77_NATS_URL is set")
    for url in urls:
        parts = urlsplit(url)
        check(parts.scheme in ("nats", "tls") and parts.hostname in hosts and parts.hostname != name
              and parts.port == port, f"NATS chart: {url} is the Service {name}.{namespace}:{port}")
    peers = production.get("networkPolicy", {}).get("nats", {})
    selector = (peers.get("to") or [{}])[0]
    check(peers.get("port") == port
          and selector.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == namespace
          and selector.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "nats",
          f"NATS chart: helm/id77's NetworkPolicy lets the services reach its pods ({peers})")

    # Partners: the client listener is TLS only, and only the client port is exposed to them.
    tls = config.get("nats", {}).get("tls", {})
    check(tls.get("enabled") is True and bool(tls.get("secretName")), f"NATS chart: TLS on the client listener ({tls})")
    check("allow_non_tls" not in config.get("merge", {}) and "allow_non_tls" not in tls.get("merge", {}),
          "NATS chart: no clear text accepted (no allow_non_tls)")
    partners = [r for r in nats_values.get("extraResources", []) if r.get("kind") == "Service"]
    exposed = [(p.get("port"), p.get("targetPort")) for r in partners for p in r.get("spec", {}).get("ports", [])]
    check(len(partners) == 1 and partners[0]["spec"].get("type") == "LoadBalancer" and exposed == [(port, "nats")],
          f"NATS chart: one partners' Service, the TLS client port only ({exposed})")
    if partners:
        validate(partners, "NATS chart")

    # The authorization id77-nats-config generates for the production providers, merged as the values say.
    providers = sorted(production.get("providers", {}))
    services = [s for s, v in production.get("services", {}).items() if v.get("natsUser", {}).get("enabled")]
    with tempfile.TemporaryDirectory() as out:
        command = ["cargo", "run", "--quiet", "-p", "id77-nats-config", "--", "generate", "--out", out, "--listen",
                   f"0.0.0.0:{port}", "--store-dir", store.get("dir", "/data")]
        for code in providers:
            command += ["--provider", code]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        check(done.returncode == 0, f"NATS chart: id77-nats-config generate: {done.stderr[-2000:]}")
        if done.returncode != 0:
            return
        authorization = (Path(out) / "authorization.conf").read_text()
        users = json.loads((Path(out) / "users.json").read_text())["users"]
    merged = copy.deepcopy(nats_values)  # as --set-file 'configMap.merge.data.id77-authorization\.conf=...'
    merged.setdefault("configMap", {}).setdefault("merge", {}).setdefault("data", {})["id77-authorization.conf"] = \
        authorization
    includes = [v for k, v in merged["config"].get("merge", {}).items() if k.endswith("$include")]
    included = [merged["configMap"]["merge"]["data"].get(i) for i in includes]
    check(includes == ["id77-authorization.conf"] and included == [authorization],
          f"NATS chart: config.merge includes the generated authorization ({includes})")
    expected = set(services) | {"gateway"} | {f"provider-{c}" for c in providers}
    check(expected <= set(users), f"NATS chart: a user for every service and provider ({sorted(expected - set(users))})")
    for user, entry in sorted(users.items()):
        check(f"# {user} (" in authorization and f'nkey: "{entry["public_key"]}"' in authorization,
              f"NATS chart: user {user} in the merged authorization")
    check("authorization {" in authorization and '"SU' not in authorization and "listen" not in authorization,
          "NATS chart: the included file is the authorization block alone, without a seed")
    print(f"  {len(users)} NKEY users merged ({', '.join(sorted(users))}); {cluster.get('replicas')} nodes; "
          f"URL(s) {', '.join(urls)}")


NATS_CA_FILE = "/etc/id77/nats-ca/ca.crt"


def nats_clients(objects: list[dict]) -> dict[str, tuple[dict, dict]]:
    """Every workload container that connects to NATS: one that authenticates to it (ID77_NATS_NKEY_FILE, --nkey) or
    runs a NATS-only program (the referral consumer, id77-nats-config), with its pod."""
    out = {}
    for obj in objects:
        if obj.get("kind") not in WORKLOAD_KINDS:
            continue
        pod = pod_spec(obj)
        for container in pod.get("initContainers", []) + pod["containers"]:
            argv = [str(a) for a in container.get("command", []) + container.get("args", [])]
            env = {e["name"] for e in container.get("env", [])}
            if ("ID77_NATS_NKEY_FILE" in env or any(a.startswith("--nkey") for a in argv)
                    or (argv and argv[0] in ("id77-referral-consumer", "id77-nats-config"))):
                out[f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"] = (pod, container)
    return out


def nats_ca(pod: dict, container: dict) -> tuple[str | None, dict | None, dict | None]:
    """The container's ID77_NATS_CA_FILE, its nats-ca mount and the pod's nats-ca volume."""
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    mount = next((m for m in container.get("volumeMounts", []) if m["name"] == "nats-ca"), None)
    volume = next((v for v in pod.get("volumes", []) if v["name"] == "nats-ca"), None)
    return env.get("ID77_NATS_CA_FILE"), mount, volume


def check_nats_tls(default_objects: list[dict], production_objects: list[dict]) -> None:
    """NATS over TLS (ADR 0014, "Partners over TLS"): the official chart's one client listener is TLS only
    (deploy/nats/values.yaml), so production connects with tls:// and mounts the NATS server's CA (nats.tls) into
    every workload that connects to NATS (the gRPC services, the gateway, the hosted referral consumers, the
    ensure-consumers Job) as ID77_NATS_CA_FILE; no other workload gets it; the defaults mount nothing; a ConfigMap
    may hold the CA; the schema refuses both a Secret and a ConfigMap."""
    from urllib.parse import urlsplit

    production = yaml.safe_load((CHART / "values-production.yaml").read_text())
    listener = yaml.safe_load((ROOT / "deploy" / "nats" / "values.yaml").read_text())["config"]["nats"]
    data = by_kind(production_objects, "ConfigMap").get(f"{RELEASE}-config", {}).get("data", {})
    urls = [u.strip() for u in data.get("ID77_NATS_URL", "").split(",") if u.strip()]
    if listener.get("tls", {}).get("enabled"):
        check(bool(urls) and all(urlsplit(u).scheme == "tls" for u in urls),
              f"nats tls: the NATS chart's listener is TLS only, production connects with tls:// ({urls})")
        check(bool(production["nats"].get("tls", {}).get("caSecret")),
              "nats tls: the NATS chart's listener is TLS only, production names the CA (nats.tls.caSecret)")

    clients = nats_clients(production_objects)
    hosted = [c for c, p in production.get("providers", {}).items() if (p.get("hosted") or {}).get("enabled")]
    expected = ({f"Deployment/{full(s)}/{s}" for s in GRPC_SERVICES} | {f"Deployment/{full('gateway')}/gateway"}
                | {f"Deployment/{full('provider-' + c)}/referral-consumer" for c in hosted}
                | {f"Job/{full('nats-config')}/ensure-consumers"})
    check(expected <= set(clients), f"nats tls: production NATS clients found ({sorted(expected - set(clients))} missing)")
    secret_name = production["nats"].get("tls", {}).get("caSecret")
    for where, (pod, container) in sorted(clients.items()):
        ca_file, mount, volume = nats_ca(pod, container)
        check(ca_file == NATS_CA_FILE, f"production: {where} gets ID77_NATS_CA_FILE={NATS_CA_FILE} ({ca_file}); a "
              "workload that connects to NATS includes the id77.natsCa* helpers (_nats.tpl)")
        check(mount is not None and mount.get("mountPath") == "/etc/id77/nats-ca" and mount.get("readOnly") is True,
              f"production: {where} mounts the NATS CA read-only at /etc/id77/nats-ca ({mount})")
        secret = (volume or {}).get("secret", {})
        check(secret.get("secretName") == secret_name and secret.get("items") == [{"key": "ca.crt", "path": "ca.crt"}],
              f"production: {where} takes the NATS CA from the Secret {secret_name}, key ca.crt ({volume})")
    for label, objects, with_ca in [("production", production_objects, clients), ("default values", default_objects, {})]:
        for obj in objects:
            if obj.get("kind") not in WORKLOAD_KINDS:
                continue
            pod = pod_spec(obj)
            for container in pod["containers"]:
                where = f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"
                if where not in with_ca:
                    check(nats_ca(pod, container) == (None, None, None),
                          f"nats tls ({label}): no NATS CA for {where}, which does not connect to NATS or has no CA")

    # The CA from a ConfigMap (another key), for every client alike.
    values = yaml.safe_load((CHART / "values-production.yaml").read_text())
    values["nats"]["tls"] = {"caConfigMap": "nats-ca", "caKey": "root.pem"}
    for where, (pod, container) in sorted(nats_clients(render(values)).items()):
        ca_file, mount, volume = nats_ca(pod, container)
        check(ca_file == NATS_CA_FILE and mount is not None
              and (volume or {}).get("configMap", {}).get("name") == "nats-ca"
              and volume["configMap"].get("items") == [{"key": "root.pem", "path": "ca.crt"}],
              f"nats tls: {where} takes the CA from the ConfigMap nats-ca, key root.pem ({volume})")
    refused = {
        "a NATS CA Secret and a CA ConfigMap": {"nats": {"url": "tls://nats:4222",
                                                         "tls": {"caSecret": "a", "caConfigMap": "b"}}},
        "an unknown nats.tls key": {"nats": {"url": "tls://nats:4222", "tls": {"ca": "a"}}},
        "an empty nats.tls.caKey": {"nats": {"url": "tls://nats:4222", "tls": {"caSecret": "a", "caKey": ""}}},
    }
    for label, bad in refused.items():
        try:
            render(copy.deepcopy(bad))
            check(False, f"schema should refuse: {label}")
        except helm.HelmValuesError:
            check(True, "")
    print(f"\nNATS over TLS: the CA {secret_name} at {NATS_CA_FILE} for {len(clients)} NATS client(s) in production "
          f"({', '.join(sorted(w.split('/')[1] for w in clients))}); none with the default values")


if __name__ == "__main__":
    sys.exit(main())
