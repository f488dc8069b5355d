"""Open Inference Protocol (KServe v2 gRPC, ``inference.GRPCInferenceService``) for the ONNX models of a server.

Every service adds ``KServeServicer`` for its models so NVIDIA's ``tritonclient[grpc]`` and KServe clients
work unchanged. The servicer is thin: it looks the model up, then hands over to the pure functions below
(``decode_inputs`` / ``requested_outputs``: request → numpy; ``encode_response``: numpy → response), which
validate strictly and raise ``InvalidArgument`` naming the offending field (``inputs[1].datatype``,
``raw_input_contents[0]``, ``outputs[0].name`` ...). Errors are raised, never returned: the runtime's
interceptor turns them into gRPC statuses with google.rpc details.

Tensor data arrives either in ``raw_input_contents`` (tritonclient's default: one entry per input, in input
order, flattened row-major little-endian; BYTES elements as a 4-byte little-endian length then the bytes)
or in each input's typed ``contents`` (fp32_contents, int64_contents, ...), never both in one request.
Answers always use ``raw_output_contents``.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import grpc
import numpy as np
from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc

from maas_runtime.errors import InvalidArgument, NotFound, quote, Unavailable, Unimplemented
from maas_runtime.onnx_model import DATATYPE_TO_NUMPY, OnnxModel, TensorSpec

# Protocol datatype -> numpy dtype (the runtime's map plus the unsigned types the protocol knows).
NUMPY_DTYPES: dict[str, np.dtype] = {
    **{k: np.dtype(v) for k, v in DATATYPE_TO_NUMPY.items()},
    "UINT16": np.dtype(np.uint16), "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64),
}

# Protocol datatype -> the InferTensorContents field that carries it. FP16 has none: raw only.
TYPED_FIELD: dict[str, str] = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
    "UINT64": "uint64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}
CONTENT_FIELDS = tuple(f.name for f in pb.InferTensorContents.DESCRIPTOR.fields)
FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})

# Tensor parameters asking for something this server does not do; refused rather than silently ignored.
_UNSUPPORTED_INPUT_PARAMS = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")
_UNSUPPORTED_OUTPUT_PARAMS = ("classification", *_UNSUPPORTED_INPUT_PARAMS)

_LEN = struct.Struct("<I")


# ---- metadata ------------------------------------------------------------------------------------------
def tensor_metadata(spec: TensorSpec) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(name=spec.name, datatype=spec.datatype, shape=list(spec.shape))


def model_metadata(model: OnnxModel) -> pb.ModelMetadataResponse:
    return pb.ModelMetadataResponse(
        name=model.name, versions=[str(model.version)], platform=model.platform,
        inputs=[tensor_metadata(s) for s in model.inputs], outputs=[tensor_metadata(s) for s in model.outputs])


# ---- request -> numpy ----------------------------------------------------------------------------------
def _names(specs: Iterable[TensorSpec]) -> str:
    return ", ".join(s.name for s in specs)


@dataclass(frozen=True)
class DynamicLimits:
    """What a request may ask of an input's dynamic (-1) dimensions: the batch axis at most ``rows``, any other at
    most ``length``, and all of them together (their product) at most ``elements``: the work of a run grows
    with them, and an unbounded one could take the whole machine's memory."""

    rows: int = 64
    length: int = 4096
    elements: int = 16384

    @classmethod
    def of(cls, manifest: Mapping[str, object]) -> "DynamicLimits":
        length = int(manifest.get("context_length") or manifest.get("max_length") or 4096)  # type: ignore[arg-type]
        return cls(length=length, elements=max(length, 16384))


def _check_shape(shape: Sequence[int], spec: TensorSpec, field: str,
                 limits: DynamicLimits | None = None) -> tuple[int, ...]:
    want = list(spec.shape)
    if len(shape) != len(want):
        raise InvalidArgument(field, f"{list(shape)} has rank {len(shape)}; input {spec.name!r} has rank "
                                     f"{len(want)} with shape {want} (-1: any size)")
    for i, (got, fixed) in enumerate(zip(shape, want)):
        if got < 0:
            raise InvalidArgument(field, f"dimension {i} is {got}; dimensions must be >= 0")
        if fixed != -1 and got != fixed:
            raise InvalidArgument(field, f"dimension {i} is {got} but input {spec.name!r} needs {fixed} "
                                         f"(shape {want}, -1: any size)")
        bound = None if limits is None or fixed != -1 else limits.rows if i == 0 else limits.length
        if bound is not None and got > bound:
            raise InvalidArgument(field, f"dimension {i} is {got}; input {spec.name!r} takes at most {bound} there")
    if limits is not None:
        dynamic = math.prod(int(d) for d, fixed in zip(shape, want) if fixed == -1)
        if dynamic > limits.elements:
            raise InvalidArgument(field, f"{list(shape)}: its dynamic dimensions make {dynamic} elements; input "
                                         f"{spec.name!r} takes at most {limits.elements}")
    return tuple(int(d) for d in shape)


def _check_params(params: Mapping[str, pb.InferParameter], unsupported: Sequence[str], field: str) -> None:
    for key in unsupported:
        if key in params:
            raise InvalidArgument(field, f"parameter {quote(key)} is not supported by this server")


def split_bytes(raw: bytes, count: int, field: str) -> list[bytes]:
    """BYTES raw contents: ``count`` elements, each a 4-byte little-endian length then that many bytes."""
    items: list[bytes] = []
    pos, end = 0, len(raw)
    while pos < end:
        if len(items) == count:
            raise InvalidArgument(field, f"holds more than the {count} BYTES elements the shape needs "
                                         f"({end - pos} bytes left over)")
        if pos + 4 > end:
            raise InvalidArgument(field, f"BYTES element {len(items)}: truncated 4-byte length prefix at byte {pos}")
        (length,) = _LEN.unpack_from(raw, pos)
        pos += 4
        if pos + length > end:
            raise InvalidArgument(field, f"BYTES element {len(items)} declares {length} bytes but only "
                                         f"{end - pos} remain")
        items.append(raw[pos:pos + length])
        pos += length
    if len(items) != count:
        raise InvalidArgument(field, f"holds {len(items)} BYTES elements; the shape needs {count}")
    return items


def join_bytes(values: np.ndarray) -> bytes:
    """The inverse of ``split_bytes`` for a BYTES tensor (str elements are UTF-8 encoded)."""
    parts = []
    for v in values.ravel():
        b = v.encode("utf-8") if isinstance(v, str) else bytes(v)
        parts.append(_LEN.pack(len(b)))
        parts.append(b)
    return b"".join(parts)


def _strings(items: Sequence[bytes], field: str) -> list[str]:
    """ONNX string tensors hold text: BYTES elements must be UTF-8."""
    out = []
    for k, b in enumerate(items):
        try:
            out.append(b.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidArgument(field, f"BYTES element {k} is not valid UTF-8 "
                                         "(ONNX string tensors hold text)") from None
    return out


def _from_raw(raw: bytes, datatype: str, shape: tuple[int, ...], field: str) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "BYTES":
        return np.array(_strings(split_bytes(raw, count, field), field), dtype=object).reshape(shape)
    dtype = NUMPY_DTYPES[datatype]
    need = count * dtype.itemsize
    if len(raw) != need:
        raise InvalidArgument(field, f"has {len(raw)} bytes; shape {list(shape)} of {datatype} needs {need} "
                                     f"({count} x {dtype.itemsize})")
    if datatype == "BOOL":
        octets = np.frombuffer(raw, dtype=np.uint8)
        if octets.size and octets.max() > 1:
            raise InvalidArgument(field, f"BOOL element {int(np.argmax(octets > 1))} is "
                                         f"{int(octets.max(initial=0))}; BOOL bytes must be 0 or 1")
        return octets.astype(np.bool_).reshape(shape)
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False).reshape(shape)


def _from_typed(contents: pb.InferTensorContents, datatype: str, shape: tuple[int, ...], field: str) -> np.ndarray:
    expected = TYPED_FIELD.get(datatype)
    if expected is None:
        raise InvalidArgument(field, f"{datatype} data cannot be sent as typed contents; "
                                     "use raw_input_contents")
    for other in CONTENT_FIELDS:
        if other != expected and len(getattr(contents, other)):
            raise InvalidArgument(f"{field}.{other}", f"{datatype} data goes in {expected}, not {other}")
    values = getattr(contents, expected)
    data_field = f"{field}.{expected}"
    count = math.prod(shape)
    if len(values) != count:
        raise InvalidArgument(data_field, f"has {len(values)} elements; shape {list(shape)} needs {count}")
    if datatype == "BYTES":
        return np.array(_strings(list(values), data_field), dtype=object).reshape(shape)
    dtype = NUMPY_DTYPES[datatype]
    if dtype.kind in "iu" and dtype.itemsize < 8 and count:
        wide = np.array(values, dtype=np.int64)
        info = np.iinfo(dtype)
        bad = (wide < info.min) | (wide > info.max)
        if bad.any():
            k = int(np.argmax(bad))
            raise InvalidArgument(data_field, f"element {k} is {int(wide[k])}, outside the {datatype} range "
                                              f"[{info.min}, {info.max}]")
        return wide.astype(dtype).reshape(shape)
    return np.array(values, dtype=dtype).reshape(shape)


def _check_finite(array: np.ndarray, field: str) -> None:
    finite = np.isfinite(array)
    if not finite.all():
        k = int(np.argmin(finite.ravel()))
        raise InvalidArgument(field, f"element {k} is {array.ravel()[k]}; values must be finite")


def decode_inputs(request: pb.ModelInferRequest, specs: Sequence[TensorSpec],
                  limits: DynamicLimits | None = None) -> dict[str, np.ndarray]:
    """The request's input tensors as numpy arrays keyed by name, validated against the model's inputs (and its
    dynamic dimensions against ``limits``)."""
    by_name = {s.name: s for s in specs}
    raw = request.raw_input_contents
    if not request.inputs:
        raise InvalidArgument("inputs", f"is empty; the model needs {_names(specs)}")
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument("raw_input_contents", f"has {len(raw)} entries for {len(request.inputs)} inputs; "
                                                    "it needs one per input, in input order")
    feeds: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(request.inputs):
        prefix = f"inputs[{i}]"
        if not tensor.name:
            raise InvalidArgument(f"{prefix}.name", f"is required; the model's inputs are {_names(specs)}")
        spec = by_name.get(tensor.name)
        if spec is None:
            raise InvalidArgument(f"{prefix}.name", f"unknown input {quote(tensor.name)}; the model's inputs are "
                                                    f"{_names(specs)}")
        if tensor.name in feeds:
            raise InvalidArgument(f"{prefix}.name", f"input {quote(tensor.name)} is given more than once")
        if tensor.datatype != spec.datatype:
            raise InvalidArgument(f"{prefix}.datatype", f"is {quote(tensor.datatype or 'empty')}; input "
                                                        f"{spec.name!r} is {spec.datatype}")
        if spec.datatype not in NUMPY_DTYPES:
            raise Unimplemented(f"input {spec.name!r} has datatype {spec.datatype}, which this endpoint cannot carry")
        shape = _check_shape(tensor.shape, spec, f"{prefix}.shape", limits)
        _check_params(tensor.parameters, _UNSUPPORTED_INPUT_PARAMS, f"{prefix}.parameters")
        if raw:
            if tensor.HasField("contents"):
                raise InvalidArgument(f"{prefix}.contents", "must not be set when raw_input_contents is used: "
                                                            "send all inputs raw or all typed")
            data_field = f"raw_input_contents[{i}]"
            array = _from_raw(raw[i], spec.datatype, shape, data_field)
        else:
            data_field = f"{prefix}.contents"
            if not tensor.HasField("contents") and math.prod(shape):
                raise InvalidArgument(data_field, "no data: set it, or send all inputs in raw_input_contents")
            array = _from_typed(tensor.contents, spec.datatype, shape, data_field)
            data_field = f"{data_field}.{TYPED_FIELD[spec.datatype]}"
        if spec.datatype in FLOAT_TYPES:
            _check_finite(array, data_field)
        feeds[spec.name] = array
    missing = [s.name for s in specs if s.name not in feeds]
    if missing:
        raise InvalidArgument("inputs", f"missing input(s) {', '.join(missing)}; the model needs {_names(specs)}")
    return feeds


def requested_outputs(request: pb.ModelInferRequest, specs: Sequence[TensorSpec]) -> list[str]:
    """Names of the outputs to return, in answer order: those asked for, or every output of the model."""
    if not request.outputs:
        return [s.name for s in specs]
    known = {s.name for s in specs}
    names: list[str] = []
    for i, out in enumerate(request.outputs):
        field = f"outputs[{i}].name"
        if not out.name:
            raise InvalidArgument(field, f"is required; the model's outputs are {_names(specs)}")
        if out.name not in known:
            raise InvalidArgument(field, f"unknown output {quote(out.name)}; the model's outputs are {_names(specs)}")
        if out.name in names:
            raise InvalidArgument(field, f"output {quote(out.name)} is requested more than once")
        _check_params(out.parameters, _UNSUPPORTED_OUTPUT_PARAMS, f"outputs[{i}].parameters")
        names.append(out.name)
    return names


# ---- numpy -> response ---------------------------------------------------------------------------------
def raw_contents(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        return join_bytes(array)
    dtype = NUMPY_DTYPES[datatype].newbyteorder("<")
    return np.ascontiguousarray(array, dtype=dtype).tobytes()


def encode_response(model_name: str, model_version: str, request_id: str, arrays: Mapping[str, np.ndarray],
                    datatypes: Mapping[str, str], names: Sequence[str]) -> pb.ModelInferResponse:
    """A ModelInferResponse with ``names`` (in that order) as outputs, data in raw_output_contents."""
    response = pb.ModelInferResponse(model_name=model_name, model_version=model_version, id=request_id)
    for name in names:
        array = np.asarray(arrays[name])
        datatype = datatypes[name]
        response.outputs.add(name=name, datatype=datatype, shape=list(array.shape))
        response.raw_output_contents.append(raw_contents(array, datatype))
    return response


# ---- the servicer --------------------------------------------------------------------------------------
def _ort_invalid_argument() -> tuple[type[BaseException], ...]:
    try:
        from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument as OrtInvalidArgument
    except ImportError:  # pragma: no cover - layout of other onnxruntime builds
        return ()
    return (OrtInvalidArgument,)


_ORT_INVALID = _ort_invalid_argument()


class KServeServicer(pb_grpc.GRPCInferenceServiceServicer):
    """KServe v2 core API over ``models`` (by name). ``is_ready`` is the server's own readiness."""

    def __init__(self, models: Mapping[str, OnnxModel], server_name: str, server_version: str,
                 is_ready: Callable[[], bool]) -> None:
        self._models = models  # not copied: the owner may add or swap models
        self._server_name = server_name
        self._server_version = server_version
        self._is_ready = is_ready

    def _model(self, name: str, version: str, name_field: str) -> OnnxModel:
        if not name:
            raise InvalidArgument(name_field, f"is required; models served here: {', '.join(sorted(self._models))}")
        model = self._models.get(name)
        if model is None:
            raise NotFound(f"model {quote(name)} is not served here; models: {', '.join(sorted(self._models))}")
        if version and version != str(model.version):
            raise NotFound(f"model {quote(name)} version {quote(version)} is not served here; it serves version "
                           f"{model.version}")
        return model

    async def ServerLive(self, request: pb.ServerLiveRequest,
                         context: grpc.aio.ServicerContext) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest,
                          context: grpc.aio.ServicerContext) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=bool(self._is_ready()))

    async def ModelReady(self, request: pb.ModelReadyRequest,
                         context: grpc.aio.ServicerContext) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=bool(self._model(request.name, request.version, "name").ready))

    async def ServerMetadata(self, request: pb.ServerMetadataRequest,
                             context: grpc.aio.ServicerContext) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=self._server_name, version=self._server_version, extensions=[])

    async def ModelMetadata(self, request: pb.ModelMetadataRequest,
                            context: grpc.aio.ServicerContext) -> pb.ModelMetadataResponse:
        return model_metadata(self._model(request.name, request.version, "name"))

    async def ModelInfer(self, request: pb.ModelInferRequest,
                         context: grpc.aio.ServicerContext) -> pb.ModelInferResponse:
        model = self._model(request.model_name, request.model_version, "model_name")
        feeds = decode_inputs(request, model.inputs, DynamicLimits.of(model.manifest))
        names = requested_outputs(request, model.outputs)
        if not model.ready:
            raise Unavailable(f"model {model.name!r} is not ready yet")
        try:
            arrays = await model.infer(feeds, names)
        except _ORT_INVALID as e:  # shapes that pass the signature but not the graph (e.g. unequal batch sizes)
            raise InvalidArgument("inputs", f"rejected by the model: {e}") from None
        datatypes = {s.name: s.datatype for s in model.outputs}
        return encode_response(model.name, str(model.version), request.id, arrays, datatypes, names)
