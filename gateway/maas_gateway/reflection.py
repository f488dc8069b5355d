"""Server reflection for the gateway: every routed service (``grpcurl list`` shows the whole suite), described by
the proto files the upstreams' own reflection returned, plus the gateway's health and reflection services."""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2
from grpc_reflection.v1alpha._async import ReflectionServicer

log = logging.getLogger("maas.gateway.reflection")

OWN = (health.SERVICE_NAME, reflection.SERVICE_NAME)


class GatewayReflection(ReflectionServicer):
    """grpc's reflection servicer over a pool that grows as upstreams are discovered, listing live names."""

    def __init__(self, service_names: Callable[[], Iterable[str]]) -> None:
        self.pool = descriptor_pool.DescriptorPool()
        self._added: set[str] = set()
        super().__init__(OWN, pool=self.pool)
        self._names = service_names
        for module in (health_pb2, reflection_pb2):
            self.add_files([descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)])

    def add_files(self, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> None:
        """Add files not yet in the pool, each after its dependencies; a conflicting file is skipped, logged."""
        pending = {f.name: f for f in files if f.name not in self._added}
        while pending:
            ready = [f for f in pending.values() if all(d in self._added for d in f.dependency)]
            if not ready:
                log.warning("proto files with missing dependencies left out of reflection",
                            extra={"files": sorted(pending)})
                return
            for f in ready:
                del pending[f.name]
                try:
                    self.pool.AddSerializedFile(f.SerializeToString())
                except (TypeError, ValueError) as e:
                    log.warning("proto file left out of reflection", extra={"file": f.name, "error": str(e)})
                    continue
                self._added.add(f.name)

    def _list_services(self, request: reflection_pb2.ServerReflectionRequest) -> reflection_pb2.ServerReflectionResponse:
        names = sorted({*self._names(), *OWN})
        return reflection_pb2.ServerReflectionResponse(
            list_services_response=reflection_pb2.ListServiceResponse(
                service=[reflection_pb2.ServiceResponse(name=n) for n in names]),
            original_request=request)

    def _file_containing_symbol(self, request: reflection_pb2.ServerReflectionRequest,
                                fully_qualified_name: str) -> reflection_pb2.ServerReflectionResponse:
        """Also a method's name (``pkg.Service.Method``, what ``grpcurl describe`` asks), which the pool does not
        look up by itself: the file of its service."""
        response = super()._file_containing_symbol(request, fully_qualified_name)
        if response.HasField("error_response") and "." in fully_qualified_name:
            parent, _, method = fully_qualified_name.rpartition(".")
            try:
                service = self.pool.FindServiceByName(parent)
            except KeyError:
                return response
            if method in service.methods_by_name:
                return super()._file_containing_symbol(request, parent)
        return response
