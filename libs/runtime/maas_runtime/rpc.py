"""What every servicer takes from a call and says about its model, in one place."""

from __future__ import annotations

import time

import grpc

from maas.common.v1 import common_pb2
from maas_runtime.onnx_model import OnnxModel


def model_info(model: OnnxModel) -> common_pb2.ModelInfo:
    """The model identity every answer carries: name, version, build key, the execution provider in use and the
    precision of its weights."""
    return common_pb2.ModelInfo(name=model.name, version=model.version, build_key=model.build_key,
                                provider=model.provider, precision=model.precision)


def deadline(context: grpc.aio.ServicerContext) -> float | None:
    """The call's deadline as a time.monotonic() value (None: the client set none)."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining
