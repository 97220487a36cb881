"""A rendered pod as local processes: its command, args and environment exactly as the kubelet would build
them (image ENV, envFrom, env, $(VAR) expansion), its Secret and ConfigMap volumes written as files, and only its
hosts, ports and mount paths rewritten to their local stand-ins (`Mapper`)."""

from __future__ import annotations

import base64
import json
import mmap
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

# The image's PATH (debian's default; deploy/Dockerfile sets none of its own).
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_PORTS = {"http": 80, "https": 443, "nats": 4222, "tls": 4222, "postgres": 5432, "postgresql": 5432}
URL = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://(?P<userinfo>[^@/\s?#]*@)?"
                 r"(?P<host>\[[^\]]*\]|[^:/?#\s,@]+)(?::(?P<port>\d+))?")
LISTEN = re.compile(r"^(?P<host>0\.0\.0\.0|\[::\]|::|)?:(?P<port>\d+)$")


class Missing(Exception):
    """A Secret or ConfigMap key the pod needs that neither the chart nor the test provides."""


def image_env(dockerfile: Path) -> dict[str, str]:
    """The ENV of the Dockerfile's last stage (the runtime image), plus the image's PATH."""
    env = {"PATH": IMAGE_PATH}
    stage: list[str] = []
    for line in dockerfile.read_text().splitlines():
        if line.startswith("FROM "):
            stage = []
        stage.append(line)
    for line in stage:
        if line.startswith("ENV "):
            rest = line[4:].strip()
            if "=" in rest.split()[0]:
                for pair in rest.split():
                    k, _, v = pair.partition("=")
                    env[k] = v.strip('"')
            else:
                k, _, v = rest.partition(" ")
                env[k] = v.strip()
    return env


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion ($$ escapes); unknown references stay as written."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


class Mapper:
    """The one table of in-cluster names and ports -> loopback stand-ins, used for every process and probe."""

    def __init__(self, namespace: str):
        self.namespace = namespace
        self.hosts: dict[tuple[str, int], tuple[str, int]] = {}

    def add(self, host: str, port: int, to_host: str, to_port: int) -> None:
        self.hosts[(host.lower(), port)] = (to_host, to_port)

    def add_service(self, name: str, port: int, to_port: int) -> None:
        ns = self.namespace
        for host in (name, f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"):
            self.add(host, port, "127.0.0.1", to_port)

    def rewrite(self, value: str, listen: dict[int, int]) -> str:
        m = LISTEN.match(value)
        if m:
            return f"127.0.0.1:{listen[int(m.group('port'))]}"

        def url(m: re.Match) -> str:
            scheme, host = m.group("scheme").lower(), m.group("host")
            port = int(m.group("port")) if m.group("port") else DEFAULT_PORTS.get(scheme)
            if port is None:
                return m.group(0)
            if host in ("0.0.0.0", "[::]"):
                return f"{m.group('scheme')}://{m.group('userinfo') or ''}127.0.0.1:{listen[port]}"
            target = self.hosts.get((host.lower(), port))
            if target is None:
                return m.group(0)
            return f"{m.group('scheme')}://{m.group('userinfo') or ''}{target[0]}:{target[1]}"

        return URL.sub(url, value)


class BinaryStrings:
    """Whether a binary contains a string (an environment variable's name it may read): a read is a literal in
    the binary, whichever crate of its dependency tree makes it (the service, id77-platform, sqlx, the
    OpenTelemetry SDK...). Over-approximates (a name only in a message counts), never misses a read."""

    def __init__(self):
        self.cache: dict[Path, mmap.mmap] = {}

    def has(self, binary: Path, name: str) -> bool:
        if binary not in self.cache:
            with open(binary, "rb") as f:
                self.cache[binary] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return self.cache[binary].find(name.encode()) >= 0


@dataclass
class Container:
    workload: str          # e.g. Deployment/id77-membership
    kind: str              # Deployment, Job
    name: str              # container name
    binary: Path
    argv: list[str]
    env: dict[str, str]
    workdir: Path
    ports: dict[str, int]            # declared name -> containerPort
    local: dict[int, int]            # containerPort -> local port
    probes: dict[str, dict]          # startupProbe, readinessProbe, livenessProbe as rendered
    pre_stop: dict | None
    grace: int
    restart_policy: str
    explicit_env: list[str] = field(default_factory=list)
    from_env: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = 0
    log: Path | None = None

    def start(self) -> None:
        self.log = self.workdir / "log.txt"
        out = open(self.log, "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([str(self.binary), *self.argv[1:]], env=self.env, cwd=self.workdir,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 12) -> str:
        if not self.log or not self.log.exists():
            return ""
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join("      | " + re.sub(r"\x1b\[[0-9;]*m", "", t)[:400] for t in text)

    def reason(self) -> str:
        """The log's last error line (or last line): the cause in a one-line failure."""
        if not self.log or not self.log.exists():
            return ""
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", t).strip() for t in self.log.read_text(errors="replace").splitlines()]
        lines = [t for t in lines if t]
        errors = [t for t in lines if "rror" in t or "panic" in t]
        line = (errors or lines or [""])[-1]
        try:
            record = json.loads(line)
            line = f"{record.get('level', '')} {record.get('message', '')}: {record.get('error', '')}".strip(": ")
        except (ValueError, AttributeError):
            pass
        return line[:300]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


class PodBuilder:
    """Builds the processes of one pod template."""

    def __init__(self, *, root: Path, mapper: Mapper, configmaps: dict[str, dict[str, str]], secret, bin_dir: Path,
                 image: dict[str, str], image_paths: dict[str, Path], failures: list[str]):
        self.root, self.mapper, self.configmaps, self.secret = root, mapper, configmaps, secret
        self.bin_dir, self.image, self.image_paths, self.failures = bin_dir, image, image_paths, failures

    def configmap(self, name: str, key: str) -> str:
        if name not in self.configmaps or key not in self.configmaps[name]:
            raise Missing(f"ConfigMap {name} key {key} is not rendered by the chart")
        return self.configmaps[name][key]

    def build(self, workload: str, kind: str, pod: dict, locals_: dict[int, int]) -> list[Container]:
        spec = pod["spec"]
        slug = re.sub(r"[^A-Za-z0-9.-]", "_", workload)
        base = self.root / "pods" / slug
        base.mkdir(parents=True, exist_ok=True)
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        containers = []
        for c in spec.get("containers", []):
            containers.append(self._container(workload, kind, spec, c, volumes, base / c["name"], locals_))
        return containers

    def _volume(self, volume: dict, where: Path) -> None:
        where.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in volume:
            return
        sources = volume["projected"]["sources"] if "projected" in volume else [volume]
        for source in sources:
            if "secret" in source:
                s = source["secret"]
                name, mode = s.get("secretName") or s.get("name"), s.get("defaultMode", 0o644)
                try:
                    keys = [i["key"] for i in s["items"]] if "items" in s else self.secret.keys(name)
                except Missing:
                    if s.get("optional"):
                        continue
                    raise
                paths = {i["key"]: i["path"] for i in s.get("items", [])}
                for key in keys:
                    target = where / paths.get(key, key)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(self.secret.get(name, key))
                    os.chmod(target, mode & 0o777 | 0o400)
            elif "configMap" in source:
                s = source["configMap"]
                name = s["name"]
                if name not in self.configmaps:
                    raise Missing(f"ConfigMap {name} is not rendered by the chart")
                keys = [i["key"] for i in s["items"]] if "items" in s else list(self.configmaps[name])
                paths = {i["key"]: i["path"] for i in s.get("items", [])}
                for key in keys:
                    target = where / paths.get(key, key)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(self.configmap(name, key))
            else:
                raise Missing(f"volume {volume['name']}: kind {sorted(source)} not supported by this test")

    def _container(self, workload, kind, spec, c, volumes, workdir: Path, locals_: dict[int, int]) -> Container:
        where = f"{workload} container {c['name']}"
        workdir.mkdir(parents=True, exist_ok=True)
        # Files: each mount at a local folder; the paths table rewrites the pod's paths to them.
        paths = dict(self.image_paths)
        for m in c.get("volumeMounts", []):
            vol = volumes.get(m["name"])
            if vol is None:
                self.failures.append(f"{where}: mounts volume {m['name']} that the pod does not declare")
                continue
            local = workdir / "volumes" / m["name"]
            if not local.exists():
                self._volume(vol, local)
            paths[m["mountPath"].rstrip("/") or "/"] = local / m["subPath"] if m.get("subPath") else local
        # The pod's view of its files: a tree with each mount (and image path) linked at its path, so that a
        # folder holding mounts (e.g. /etc/id77/bootstrap/db with one mount per service) exists as in the pod.
        fs = workdir / "fs"
        for mount, local in paths.items():
            link = fs / mount.lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(local)
        # Ports: every declared containerPort gets its own local port (all pods declare the same ones).
        ports = {p.get("name", str(p["containerPort"])): p["containerPort"] for p in c.get("ports", [])}
        listen = _AutoPorts(locals_, ports.values())
        # Environment, in the kubelet's order: image ENV, envFrom, env (later wins), then $(VAR) expansion.
        env = dict(self.image)
        from_env, explicit = [], []
        for source in c.get("envFrom", []):
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                name = source["configMapRef"]["name"]
                if name not in self.configmaps:
                    raise Missing(f"envFrom ConfigMap {name} is not rendered by the chart")
                items = self.configmaps[name]
            else:
                name = source["secretRef"]["name"]
                items = {k: self.secret.get(name, k).decode() for k in self.secret.keys(name)}
            for k, v in items.items():
                env[prefix + k] = v
                from_env.append(prefix + k)
        for e in c.get("env", []):
            explicit.append(e["name"])
            if "value" in e:
                env[e["name"]] = expand(str(e["value"]), env)
            elif "valueFrom" in e:
                ref = e["valueFrom"]
                if "secretKeyRef" in ref:
                    r = ref["secretKeyRef"]
                    try:
                        env[e["name"]] = self.secret.get(r["name"], r["key"]).decode()
                    except Missing:
                        if not r.get("optional"):
                            raise
                elif "configMapKeyRef" in ref:
                    r = ref["configMapKeyRef"]
                    env[e["name"]] = self.configmap(r["name"], r["key"])
                elif "fieldRef" in ref:
                    field_path = ref["fieldRef"]["fieldPath"]
                    env[e["name"]] = {"metadata.name": workload.split("/")[-1] + "-0", "metadata.namespace":
                                      self.mapper.namespace, "status.podIP": "127.0.0.1"}.get(field_path, "")
                else:
                    raise Missing(f"{where}: env {e['name']} valueFrom {sorted(ref)} not supported by this test")
            else:
                env[e["name"]] = ""
        env.setdefault("HOSTNAME", workload.split("/")[-1] + "-0")
        command = [expand(x, env) for x in c.get("command", [])]
        args = [expand(x, env) for x in c.get("args", [])]
        argv = command + args
        if not command:
            raise Missing(f"{where}: no command (the image has no ENTRYPOINT)")
        binary = self.bin_dir / Path(command[0]).name
        if not binary.exists():
            raise Missing(f"{where}: command {command[0]} is not a binary of the workspace ({binary} missing)")
        # Hosts, ports and paths only: every variable and argument stays.
        for k in list(env):
            if k in self.image and k not in explicit and k not in from_env:
                continue
            env[k] = self._path(self.mapper.rewrite(env[k], listen), fs, f"{where}: {k}")
        argv = [argv[0]] + [self._arg(a, listen, fs, where) for a in argv[1:]]
        probes = {p: c[p] for p in ("startupProbe", "readinessProbe", "livenessProbe") if p in c}
        return Container(workload=workload, kind=kind, name=c["name"], binary=binary, argv=argv, env=env,
                         workdir=workdir, ports=ports, local=locals_, probes=probes,
                         pre_stop=(c.get("lifecycle") or {}).get("preStop"),
                         grace=int(spec.get("terminationGracePeriodSeconds", 30)),
                         restart_policy=spec.get("restartPolicy", "Always"), explicit_env=explicit, from_env=from_env)

    def _path(self, value: str, fs: Path, what: str) -> str:
        """An absolute path -> the same path in the pod's file tree; it must exist there (mounted or shipped)."""
        if not value.startswith("/") or value.startswith("/tmp"):
            return value
        local = fs / value.lstrip("/")
        if not local.exists():
            self.failures.append(f"{what}={value}: no volume mounts it and the image does not ship it")
            return value
        return str(local)

    def _arg(self, arg: str, listen: dict[int, int], paths: Path, where: str) -> str:
        if arg.startswith("--") and "=" in arg:
            flag, _, value = arg.partition("=")
            return f"{flag}={self._path(self.mapper.rewrite(value, listen), paths, f'{where}: {flag}')}"
        return self._path(self.mapper.rewrite(arg, listen), paths, f"{where}: argument")


class _AutoPorts(dict):
    """containerPort -> local port; a port the process listens on without declaring it gets one too."""

    def __init__(self, table: dict[int, int], declared):
        super().__init__(table)
        self.table = table

    def __missing__(self, port: int) -> int:
        from .infra import free_port
        self.table[port] = self[port] = free_port()
        return self[port]


def decode_secret(obj: dict) -> dict[str, bytes]:
    data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
    return data
