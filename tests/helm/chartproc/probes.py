"""The chart's probes, run as the kubelet runs them: gRPC health (grpc.health.v1, the probe's `service`), HTTP
GET (path, port by name or number, 200-399), TCP connect."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .workloads import Container

_channels: dict[int, grpc.Channel] = {}


def _port(container: Container, port) -> int:
    number = container.ports.get(port) if isinstance(port, str) else port
    if number is None:
        raise ValueError(f"probe port {port!r} is not a declared port of the container ({container.ports})")
    return container.local[number]


def describe(probe: dict) -> str:
    if "grpc" in probe:
        return f"gRPC health port {probe['grpc']['port']} service {probe['grpc'].get('service', '')!r}"
    if "httpGet" in probe:
        return f"HTTP GET {probe['httpGet'].get('path', '/')} port {probe['httpGet']['port']}"
    if "tcpSocket" in probe:
        return f"TCP port {probe['tcpSocket']['port']}"
    return f"unsupported {sorted(probe)}"


def check(container: Container, probe: dict) -> tuple[bool, str]:
    """One probe attempt: (passed, what it saw)."""
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "grpc" in probe:
            port = _port(container, probe["grpc"]["port"])
            channel = _channels.get(port)
            if channel is None:
                channel = _channels[port] = grpc.insecure_channel(f"127.0.0.1:{port}")
            stub = health_pb2_grpc.HealthStub(channel)
            answer = stub.Check(health_pb2.HealthCheckRequest(service=probe["grpc"].get("service", "")),
                                timeout=timeout)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
            return answer.status == health_pb2.HealthCheckResponse.SERVING, status
        if "httpGet" in probe:
            get = probe["httpGet"]
            port = _port(container, get["port"])
            url = f"{get.get('scheme', 'HTTP').lower()}://127.0.0.1:{port}{get.get('path', '/')}"
            request = urllib.request.Request(url, headers={h["name"]: h["value"] for h in get.get("httpHeaders", [])})
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    return 200 <= response.status < 400, f"HTTP {response.status}"
            except urllib.error.HTTPError as error:
                return False, f"HTTP {error.code}"
        if "tcpSocket" in probe:
            port = _port(container, probe["tcpSocket"]["port"])
            with socket.create_connection(("127.0.0.1", port), timeout=timeout):
                return True, "connected"
        return False, f"probe kind {sorted(probe)} not supported by this test"
    except grpc.RpcError as error:
        return False, f"gRPC {error.code().name}"
    except (OSError, ValueError) as error:
        return False, str(error)


def close() -> None:
    for channel in _channels.values():
        channel.close()
    _channels.clear()
