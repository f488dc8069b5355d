"""Exit 0 when a gRPC server reports SERVING on grpc.health.v1, 1 otherwise (Docker HEALTHCHECK, compose).

    python -m maas_runtime.healthcheck [--address host:port] [--service NAME] [--timeout S]

``--service ""`` (the default) asks for the whole server. Prints one line saying what it found. Imports only
grpcio and grpcio-health-checking, so it starts fast and runs in any image of the suite. A server with TLS
(``<PREFIX>TLS_CERT_FILE``) is asked over TLS with ``--tls-ca-file`` (and ``--tls-cert-file`` /
``--tls-key-file`` when it wants a client certificate; ``--tls-server-name`` when 127.0.0.1 is not in its
certificate).
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"
_OPTIONS = [("grpc.enable_http_proxy", 0)]


def check(address: str, service: str = "", timeout: float = 3.0,
          credentials: grpc.ChannelCredentials | None = None, server_name: str | None = None) -> tuple[bool, str]:
    """(serving, what the server said or why it could not be asked)."""
    options = _OPTIONS + ([("grpc.ssl_target_name_override", server_name)] if server_name else [])
    channel = grpc.secure_channel(address, credentials, options=options) if credentials else \
        grpc.insecure_channel(address, options=options)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            details = e.details() if hasattr(e, "details") else str(e)
            name = code.name if code is not None else "ERROR"
            if code == grpc.StatusCode.NOT_FOUND:
                return False, f"NOT_FOUND: no health status for service {service!r}"
            return False, f"{name}: {details}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # Docker reserves exit code 2: a usage error is "unhealthy" (1)
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="python -m maas_runtime.healthcheck",
                description="Exit 0 if the server reports SERVING on grpc.health.v1, 1 otherwise.")
    p.add_argument("--address", default=DEFAULT_ADDRESS, help=f"host:port (default {DEFAULT_ADDRESS})")
    p.add_argument("--service", default="", help="gRPC service name; empty: the whole server (default)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    p.add_argument("--tls-ca-file", help="PEM roots: ask over TLS (default: plaintext)")
    p.add_argument("--tls-cert-file", help="PEM client certificate, for a server that wants one")
    p.add_argument("--tls-key-file", help="PEM key of the client certificate")
    p.add_argument("--tls-server-name", help="name to expect in the server's certificate")
    args = p.parse_args(argv)
    if args.timeout <= 0:
        p.error("--timeout must be positive")
    if (args.tls_cert_file or args.tls_key_file or args.tls_server_name) and not args.tls_ca_file:
        p.error("--tls-cert-file, --tls-key-file and --tls-server-name need --tls-ca-file")
    credentials = None
    if args.tls_ca_file:
        read = lambda path: open(path, "rb").read() if path else None  # noqa: E731
        try:
            credentials = grpc.ssl_channel_credentials(read(args.tls_ca_file), read(args.tls_key_file),
                                                       read(args.tls_cert_file))
        except OSError as e:
            p.error(str(e))
    serving, said = check(args.address, args.service, args.timeout, credentials, args.tls_server_name)
    target = f"{args.address} {args.service or '(server)'}"
    print(f"{target}: {said}", file=sys.stdout if serving else sys.stderr)
    return 0 if serving else 1


if __name__ == "__main__":
    raise SystemExit(main())
