"""The gateway's side of the Open Inference Protocol (KServe v2): the server-level calls it answers itself,
and the one request it builds (ModelMetadata, to learn which upstream serves a model)."""

from __future__ import annotations

from typing import Callable

import grpc
from inference import grpc_service_pb2 as pb

KSERVE = "inference.GRPCInferenceService"


def metadata_request(model: str) -> bytes:
    return pb.ModelMetadataRequest(name=model).SerializeToString()


def local_handlers(ready: Callable[[], bool], name: str, version: str) -> dict[str, grpc.RpcMethodHandler]:
    """ServerLive / ServerReady / ServerMetadata describe the gateway: live while it runs, ready while every
    upstream serving KServe reports SERVING."""

    async def server_live(request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(request: pb.ServerReadyRequest,
                           context: grpc.aio.ServicerContext) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=ready())

    async def server_metadata(request: pb.ServerMetadataRequest,
                              context: grpc.aio.ServicerContext) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=name, version=version, extensions=[])

    def unary(behavior: Callable, request: type, response: type) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(behavior, request_deserializer=request.FromString,
                                                   response_serializer=response.SerializeToString)

    return {
        f"/{KSERVE}/ServerLive": unary(server_live, pb.ServerLiveRequest, pb.ServerLiveResponse),
        f"/{KSERVE}/ServerReady": unary(server_ready, pb.ServerReadyRequest, pb.ServerReadyResponse),
        f"/{KSERVE}/ServerMetadata": unary(server_metadata, pb.ServerMetadataRequest, pb.ServerMetadataResponse),
    }
