"""Test support for the gateway, the clients and the benchmarks (imported by tests only, never by the gateway).

- ``maas.testing.v1.Echo`` on the shared runtime: every RPC shape, with knobs (delays, failures with
  google.rpc details, payload sizes) and the observations a test needs (metadata and deadline the server saw,
  whether a call was cancelled). Its proto is compiled at run time with grpcio-tools (a development
  dependency), so it never reaches the product's generated code. ``python -m maas_gateway.testing`` runs it
  as a process (ECHO_HOST, ECHO_PORT, ECHO_NAME, ...), for benchmarks and kill tests.
- ``stub_nlp`` / ``nlp_upstream``: a stand-in ``maas.nlp.v1.NlpAnalysis`` with fixed answers (no models), whose
  next answers can be made failures (``fail_next``), for the gateway's and the clients' tests.
- ``echo_upstream``: a started Echo server as an async context manager; ``gateway``: the gateway's executable
  (``gateway/build/maas-gateway``, built when stale) as a process in front of given upstreams, SERVING for the block;
  ``eventually``; ``make_pki``: a CA with server and client certificates (the ``cryptography`` package).
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, AsyncIterator, Iterable

import grpc
from pydantic_settings import SettingsConfigDict

from maas_runtime.errors import InvalidArgument, Overloaded, ServiceError
from maas_runtime.server import ModelServer
from maas_runtime.settings import ServerSettings

SERVICE = "maas.testing.v1.Echo"
CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0)]  # test clients: never through a proxy


@lru_cache(maxsize=1)
def protos() -> tuple[ModuleType, ModuleType]:
    """(echo_pb2, echo_pb2_grpc), compiled from echo.proto on first use."""
    return grpc.protos_and_services("maas_gateway/testing/echo.proto")


class EchoSettings(ServerSettings):
    model_config = SettingsConfigDict(env_prefix="ECHO_", extra="ignore")

    port: int = 0
    name: str = "echo"


def _error(code: int, text: str) -> ServiceError:
    status = next(c for c in grpc.StatusCode if c.value[0] == code)
    if status == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument("text", f"rejected on request: {text!r}")
    if status == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return Overloaded("echo is busy", retry_after_s=0.25)
    error = ServiceError(f"failing on request with {status.name}: {text!r}")
    error.code = status
    return error


def echo_servicer(name: str = "echo") -> Any:
    """The servicer, a subclass of the generated base class (compiled on first use)."""
    pb, pb_grpc = protos()

    class Servicer(pb_grpc.EchoServicer):
        def __init__(self) -> None:
            self.name = name
            self.cancelled = asyncio.Event()  # set when a call of ours was cancelled
            self.calls = 0

        def _response(self, request: Any, context: grpc.aio.ServicerContext, index: int = 0,
                      text: str | None = None) -> Any:
            remaining = context.time_remaining()
            payload = b"x" * request.response_bytes if request.response_bytes else request.payload
            return pb.EchoResponse(
                text=request.text if text is None else text, index=index, served_by=self.name, payload=payload,
                metadata={k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)},
                time_remaining_s=-1.0 if remaining is None else remaining)

        async def _pause(self, request: Any) -> None:
            if request.delay_ms:
                try:
                    await asyncio.sleep(request.delay_ms / 1000)
                except asyncio.CancelledError:
                    self.cancelled.set()
                    raise

        async def Unary(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
            self.calls += 1
            await self._pause(request)
            if request.fail_code:
                raise _error(request.fail_code, request.text)
            return self._response(request, context)

        async def ServerStream(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            self.calls += 1
            try:
                for i in range(request.count):
                    await self._pause(request)
                    yield self._response(request, context, index=i)
            except (asyncio.CancelledError, GeneratorExit):
                self.cancelled.set()
                raise
            if request.fail_code:
                raise _error(request.fail_code, request.text)

        async def ClientStream(self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            self.calls += 1
            texts, last = [], pb.EchoRequest()
            async for request in requests:
                texts.append(request.text)
                last = request
            if last.fail_code:
                raise _error(last.fail_code, last.text)
            return self._response(last, context, index=len(texts), text=" ".join(texts))

        async def BidiStream(self, requests: AsyncIterator[Any],
                             context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            self.calls += 1
            i = 0
            try:
                async for request in requests:
                    await self._pause(request)
                    if request.fail_code:
                        raise _error(request.fail_code, request.text)
                    yield self._response(request, context, index=i)
                    i += 1
            except (asyncio.CancelledError, GeneratorExit):
                self.cancelled.set()
                raise

    return Servicer()


def echo_server(settings: EchoSettings) -> tuple[ModelServer, Any]:
    """A ModelServer serving Echo (health, reflection, interceptor: the same bootstrap as the services)."""
    _, pb_grpc = protos()
    servicer = echo_servicer(settings.name)
    server = ModelServer(settings, name=settings.name)
    server.add_service(pb_grpc.add_EchoServicer_to_server, servicer, SERVICE)
    return server, servicer


# ---- a stand-in nlp-analysis -----------------------------------------------------------------------------------
def stub_nlp() -> Any:
    """A stand-in maas.nlp.v1.NlpAnalysis servicer: fixed answers; a text "bad" is refused as the real service
    refuses input; ``fail_next(*errors)`` makes the next calls fail with them."""
    from maas.common.v1 import common_pb2
    from maas.nlp.v1 import nlp_pb2, nlp_pb2_grpc

    info = common_pb2.ModelInfo(name="stub", version=1, provider="CPUExecutionProvider")

    class Servicer(nlp_pb2_grpc.NlpAnalysisServicer):
        def __init__(self) -> None:
            self.failures: list[ServiceError] = []
            self.calls = 0

        def fail_next(self, *errors: ServiceError) -> None:
            self.failures.extend(errors)

        def _admit(self, texts: Any) -> None:
            self.calls += 1
            if self.failures:
                raise self.failures.pop(0)
            if "bad" in texts:
                raise InvalidArgument(f"texts[{list(texts).index('bad')}]", "is refused by the stub")

        async def AnalyzeSentiment(self, request: Any, context: Any) -> Any:
            self._admit(request.texts)
            return nlp_pb2.AnalyzeSentimentResponse(model=info, results=[
                nlp_pb2.SentimentResult(label=nlp_pb2.SENTIMENT_POSITIVE, negative=0.1, neutral=0.2, positive=0.7)
                for _ in request.texts])

        async def ClassifyText(self, request: Any, context: Any) -> Any:
            self._admit(request.texts)
            labels = list(request.candidate_labels)
            scores = [nlp_pb2.LabelScore(label=l, score=round(1 / (i + 2), 3)) for i, l in enumerate(labels)] \
                if labels else [nlp_pb2.LabelScore(label="melancholic", score=0.8, group="mood"),
                                nlp_pb2.LabelScore(label="jazz", score=0.6, group="genre")]
            return nlp_pb2.ClassifyTextResponse(model=info, results=[
                nlp_pb2.Classification(scores=scores) for _ in request.texts])

        async def EmbedText(self, request: Any, context: Any) -> Any:
            self._admit(request.texts)
            return nlp_pb2.EmbedTextResponse(model=info, dimension=2, embeddings=[
                nlp_pb2.Embedding(values=[0.6, 0.8]) for _ in request.texts])

        async def ExtractEntities(self, request: Any, context: Any) -> Any:
            self._admit(request.texts)
            results = []
            for text in request.texts:
                start = text.find("London")
                found = [nlp_pb2.Entity(label="GPE", span=common_pb2.TextSpan(start=start, end=start + 6),
                                        text="London", score=0.9)] if start >= 0 else []
                results.append(nlp_pb2.EntityList(entities=found))
            return nlp_pb2.ExtractEntitiesResponse(model=info, results=results)

    return Servicer()


@asynccontextmanager
async def nlp_upstream(models: Iterable[Any] = (), port: int = 0) -> AsyncIterator["Running"]:
    """The stand-in nlp-analysis on the runtime's ModelServer (optionally with KServe models)."""
    from maas.nlp.v1 import nlp_pb2_grpc

    servicer = stub_nlp()
    server = ModelServer(ServerSettings(port=port, log_format="text"), name="nlp-analysis")
    server.add_service(nlp_pb2_grpc.add_NlpAnalysisServicer_to_server, servicer, "maas.nlp.v1.NlpAnalysis")
    models = list(models)
    if models:
        server.add_models(models)
    bound = await server.start()
    await server.set_ready()
    try:
        yield Running(server, f"127.0.0.1:{bound}", servicer)
    finally:
        await server.stop(0)


# ---- started servers -------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Running:
    server: ModelServer
    address: str
    servicer: Any = None

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


@asynccontextmanager
async def echo_upstream(name: str = "echo", port: int = 0, models: Iterable[Any] = (), **settings: Any
                        ) -> AsyncIterator[Running]:
    """An Echo server (optionally with KServe models) on 127.0.0.1, SERVING until the block ends."""
    server, servicer = echo_server(EchoSettings(name=name, port=port, log_format="text", **settings))
    models = list(models)
    if models:
        server.add_models(models)
    bound = await server.start()
    await server.set_ready()
    try:
        yield Running(server, f"127.0.0.1:{bound}", servicer)
    finally:
        await server.stop(0)


@dataclass(frozen=True)
class UpstreamConfig:
    """One upstream of ``gateway()``: ``GATEWAY_<NAME>_ADDR=<target>`` and, when ``services`` are given,
    ``GATEWAY_<NAME>_SERVICES`` (for an upstream without reflection)."""

    target: str
    services: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "services", tuple(self.services))


def gateway_env(upstreams: dict[str, Any], **settings: Any) -> dict[str, str]:
    """GATEWAY_* variables for ``upstreams`` (name -> UpstreamConfig, a target string, or {"target": ...}) and
    ``settings`` (field names of the gateway's settings: ``api_keys="a,b"``, ``upstream_tls=True``, ...)."""
    env: dict[str, str] = {}
    for name, config in upstreams.items():
        if isinstance(config, str):
            config = UpstreamConfig(target=config)
        elif isinstance(config, dict):
            config = UpstreamConfig(**config)
        key = "GATEWAY_" + name.upper().replace("-", "_")
        env[f"{key}_ADDR"] = config.target
        if config.services:
            env[f"{key}_SERVICES"] = ",".join(config.services)
    for field, value in settings.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        env[f"GATEWAY_{field.upper()}"] = str(value)
    return env


_LISTENING = re.compile(r'listening.*?address(?:=|": ")([^\s",]+)')
_SERVING = re.compile(r'(\] serving |"msg": "serving")')


class GatewayProcess:
    """The gateway's executable, started by ``gateway()``; its log (stdout and stderr) goes to a file."""

    def __init__(self, proc: subprocess.Popen, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path
        self.address = ""
        self._final_log: str | None = None  # once the file is gone

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def log(self) -> str:
        if self._final_log is not None:
            return self._final_log
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def wait_serving(self, timeout: float) -> None:
        """Until it reports SERVING (its first discovery round is over); RuntimeError with its log if it exits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            text = self.log()
            found = _LISTENING.search(text)
            if found and _SERVING.search(text):
                self.address = found.group(1)
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with status {self.proc.returncode}:\n{text}")
            if loop.time() > deadline:
                raise RuntimeError(f"the gateway did not report SERVING within {timeout:.0f} s:\n{text}")
            await asyncio.sleep(0.02)

    async def stop(self, timeout: float = 15) -> int:
        """SIGTERM (NOT_SERVING, then a graceful stop), SIGKILL after ``timeout``; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        return self.proc.returncode


@lru_cache(maxsize=1)
def _binary() -> Path:
    from maas_gateway import binary

    return binary()


@asynccontextmanager
async def gateway(upstreams: dict[str, Any], **settings: Any) -> AsyncIterator[tuple[GatewayProcess, str]]:
    """The gateway's executable on 127.0.0.1 (a port of its choosing), with quick health polling, SERVING when the
    block starts and stopped when it ends: (process, address). ``settings`` as for ``gateway_env``. Its log is
    written to this process's stderr when it stops (pytest shows it for a failed test)."""
    settings.setdefault("health_interval_s", 0.2)
    settings.setdefault("discovery_timeout_s", 5.0)
    settings.setdefault("log_format", "text")
    settings.setdefault("grace_seconds", 0)
    settings = {"host": "127.0.0.1", "port": 0, **settings}
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("GATEWAY_")}
    env.update(gateway_env(upstreams, **settings))
    path = await asyncio.to_thread(_binary)
    fd, log_name = tempfile.mkstemp(prefix="maas-gateway-", suffix=".log")
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen([str(path)], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    running = GatewayProcess(proc, Path(log_name))
    try:
        await running.wait_serving(timeout=float(settings["discovery_timeout_s"]) + 30)
        yield running, running.address
    finally:
        await running.stop()
        running._final_log = running.log()
        sys.stderr.write(running._final_log)
        running.log_path.unlink(missing_ok=True)


def gateway_exit(upstreams: dict[str, Any] | None = None, timeout: float = 30, **settings: Any
                 ) -> subprocess.CompletedProcess:
    """Run ``python -m maas_gateway`` with settings it should refuse: it exits at once; its status and output
    (a gateway that starts instead is stopped after ``timeout`` and the call fails)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("GATEWAY_")}
    env.update(gateway_env(upstreams or {}, **{"port": 0, "discovery_timeout_s": 0.5, **settings}))
    _binary()  # built beforehand: the timeout is for the gateway, not for the compiler
    return subprocess.run([sys.executable, "-m", "maas_gateway"], env=env, capture_output=True, text=True,
                          timeout=timeout)


async def eventually(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Await ``predicate()`` (sync or async) until it is truthy; its value, or AssertionError at the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not true after {timeout} s")
        await asyncio.sleep(interval)


# ---- certificates --------------------------------------------------------------------------------------------
@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA nothing here is signed by
    named_cert: Path  # a server certificate for the name echo.maas.internal only (no address)
    named_key: Path


def make_pki(out: Path) -> Pki:
    """A CA, a server certificate for localhost / 127.0.0.1, a client certificate, and an unrelated CA."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(key: Any, cert: x509.Certificate, stem: str) -> tuple[Path, Path]:
        cert_path, key_path = out / f"{stem}.crt", out / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path

    def authority(cn: str) -> tuple[Any, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn)).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=7))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return key, cert

    def leaf(ca_key: Any, ca_cert: x509.Certificate, cn: str, usage: Any, sans: list[Any]) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca_cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=7))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    ca_key, ca_cert = authority("maas test CA")
    ca_path, _ = write(ca_key, ca_cert, "ca")
    other_key, other_cert = authority("someone else's CA")
    other_path, _ = write(other_key, other_cert, "other-ca")
    s_key, s_cert = leaf(ca_key, ca_cert, "localhost", ExtendedKeyUsageOID.SERVER_AUTH,
                         [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    server_cert, server_key = write(s_key, s_cert, "server")
    c_key, c_cert = leaf(ca_key, ca_cert, "maas-gateway", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    client_cert, client_key = write(c_key, c_cert, "client")
    n_key, n_cert = leaf(ca_key, ca_cert, "echo.maas.internal", ExtendedKeyUsageOID.SERVER_AUTH,
                         [x509.DNSName("echo.maas.internal")])
    named_cert, named_key = write(n_key, n_cert, "named")
    return Pki(ca_path, server_cert, server_key, client_cert, client_key, other_path, named_cert, named_key)
