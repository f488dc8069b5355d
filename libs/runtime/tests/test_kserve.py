"""KServe v2 / Open Inference Protocol servicer: pure conversions, a real grpc.aio server, and NVIDIA's client.

Two tiny ONNX models are built with onnx.helper in a temporary Triton-shaped repository:
- ``double``: y = x * 2 (FP32 [-1, 4]) and ids_out = ids (INT64 [-1]);
- ``echo``:   text_out = text (BYTES / ONNX string [-1]).
They are loaded with ``OnnxModel.load`` and served by ``KServeServicer`` alone on 127.0.0.1:0.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import grpc
import numpy as np
import onnx
import pytest
import pytest_asyncio
from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from onnx import TensorProto, helper

from maas_runtime.errors import InvalidArgument, ServiceError
from maas_runtime.executor import BoundedExecutor
from maas_runtime.kserve import (KServeServicer, decode_inputs, encode_response, join_bytes, requested_outputs,
                                 split_bytes)
from maas_runtime.onnx_model import OnnxModel, TensorSpec
from maas_runtime.settings import ModelSettings
from maas_runtime.testing import triton_check, violations

CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0)]

X_SPECS = (TensorSpec("x", "FP32", (-1, 4)), TensorSpec("ids", "INT64", (-1,)))
Y_SPECS = (TensorSpec("y", "FP32", (-1, 4)), TensorSpec("ids_out", "INT64", (-1,)))


# ---- the model repository --------------------------------------------------------------------------------
def _save(repo: Path, name: str, graph: onnx.GraphProto, inputs: list[dict], outputs: list[dict]) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="test")
    model.ir_version = 8
    onnx.checker.check_model(model)
    directory = repo / name / "1"
    directory.mkdir(parents=True)
    onnx.save(model, str(directory / "model.onnx"))
    manifest = {"name": name, "version": 1, "recipe_key": "test", "inputs": inputs, "outputs": outputs}
    (directory / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("models")
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    double = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"]), helper.make_node("Identity", ["ids"], ["ids_out"])],
        "double",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("ids_out", TensorProto.INT64, ["n"])],
        initializer=[two])
    _save(repo, "double", double,
          [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}, {"name": "ids", "datatype": "INT64", "shape": [-1]}],
          [{"name": "y", "datatype": "FP32", "shape": [-1, 4]},
           {"name": "ids_out", "datatype": "INT64", "shape": [-1]}])
    echo = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["text_out"])], "echo",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["n"])],
        [helper.make_tensor_value_info("text_out", TensorProto.STRING, ["n"])])
    _save(repo, "echo", echo, [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
          [{"name": "text_out", "datatype": "BYTES", "shape": [-1]}])
    return repo


# ---- the server --------------------------------------------------------------------------------------------
class _MapErrors(grpc.aio.ServerInterceptor):
    """Minimal stand-in for the runtime's interceptor: ServiceError -> its status with google.rpc details."""

    async def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        behavior = handler.unary_unary

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await behavior(request, context)
            except ServiceError as e:
                status = e.to_status()
                await context.abort(status.code, status.details, status.trailing_metadata)

        return grpc.unary_unary_rpc_method_handler(wrapped, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)


class Served:
    def __init__(self, address: str, stub: pb_grpc.GRPCInferenceServiceStub, models: dict[str, OnnxModel],
                 state: dict[str, bool]) -> None:
        self.address = address
        self.stub = stub
        self.models = models
        self.state = state


async def _start(repository: Path, interceptor: grpc.aio.ServerInterceptor) -> AsyncIterator[Served]:
    executor = BoundedExecutor(1)
    settings = ModelSettings(providers="cpu", executor_workers=1, intra_op_threads=1)
    models = {name: OnnxModel.load(repository, name, settings, executor) for name in ("double", "echo")}
    await models["double"].warmup()
    await models["echo"].warmup({"text": np.array(["warm"], dtype=object)})
    state = {"ready": True}
    server = grpc.aio.server(interceptors=[interceptor])
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(
        KServeServicer(models, "maas-test", "0.0.1", lambda: state["ready"]), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    address = f"127.0.0.1:{port}"
    channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
    try:
        yield Served(address, pb_grpc.GRPCInferenceServiceStub(channel), models, state)
    finally:
        await channel.close()
        await server.stop(None)
        executor.shutdown()


@pytest_asyncio.fixture
async def served(repository: Path) -> AsyncIterator[Served]:
    async for s in _start(repository, _MapErrors()):
        yield s


# ---- helpers -------------------------------------------------------------------------------------------


def raw_request(x: np.ndarray, ids: np.ndarray, **kwargs: Any) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="double", **kwargs)
    request.inputs.add(name="x", datatype="FP32", shape=list(x.shape))
    request.inputs.add(name="ids", datatype="INT64", shape=list(ids.shape))
    request.raw_input_contents.extend([x.astype("<f4").tobytes(), ids.astype("<i8").tobytes()])
    return request


def typed_request(x: np.ndarray, ids: np.ndarray) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="double")
    request.inputs.add(name="x", datatype="FP32", shape=list(x.shape)).contents.fp32_contents.extend(x.ravel().tolist())
    request.inputs.add(name="ids", datatype="INT64", shape=list(ids.shape)).contents.int64_contents.extend(
        ids.ravel().tolist())
    return request


def outputs_of(response: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    """Decode raw_output_contents the way a client does."""
    dtypes = {"FP32": "<f4", "INT64": "<i8"}
    result = {}
    for tensor, raw in zip(response.outputs, response.raw_output_contents, strict=True):
        if tensor.datatype == "BYTES":
            items = split_bytes(raw, math.prod(tensor.shape), "out")
            result[tensor.name] = np.array([b.decode() for b in items], dtype=object).reshape(tuple(tensor.shape))
        else:
            result[tensor.name] = np.frombuffer(raw, dtype=dtypes[tensor.datatype]).reshape(tuple(tensor.shape))
    return result


X = np.array([[1.0, 2.0, 3.0, 4.0], [-0.5, 0.0, 1e-3, 123.25]], dtype=np.float32)
IDS = np.array([7, -3], dtype=np.int64)


# ---- pure conversions (no server) -----------------------------------------------------------------------
def test_decode_raw_and_typed_agree() -> None:
    raw = decode_inputs(raw_request(X, IDS), X_SPECS)
    typed = decode_inputs(typed_request(X, IDS), X_SPECS)
    for feeds in (raw, typed):
        assert feeds["x"].dtype == np.float32 and feeds["x"].shape == (2, 4)
        assert feeds["ids"].dtype == np.int64
        np.testing.assert_array_equal(feeds["x"], X)
        np.testing.assert_array_equal(feeds["ids"], IDS)


def test_bytes_framing_round_trip() -> None:
    values = np.array(["", "héllo", "a" * 300], dtype=object)
    raw = join_bytes(values)
    assert raw[:4] == struct.pack("<I", 0)
    assert split_bytes(raw, 3, "f") == [b"", "héllo".encode(), b"a" * 300]
    with pytest.raises(InvalidArgument) as info:
        split_bytes(raw, 2, "raw_input_contents[0]")
    assert info.value.violations[0].field == "raw_input_contents[0]"
    with pytest.raises(InvalidArgument):
        split_bytes(raw[:-1], 3, "f")


def test_requested_outputs_and_encode_response() -> None:
    request = pb.ModelInferRequest(model_name="double")
    assert requested_outputs(request, Y_SPECS) == ["y", "ids_out"]
    request.outputs.add(name="ids_out")
    assert requested_outputs(request, Y_SPECS) == ["ids_out"]
    response = encode_response("double", "1", "r1", {"y": X * 2, "ids_out": IDS},
                               {"y": "FP32", "ids_out": "INT64"}, ["y", "ids_out"])
    assert (response.model_name, response.model_version, response.id) == ("double", "1", "r1")
    assert [(o.name, o.datatype, list(o.shape)) for o in response.outputs] == [
        ("y", "FP32", [2, 4]), ("ids_out", "INT64", [2])]
    assert not any(o.HasField("contents") for o in response.outputs)
    decoded = outputs_of(response)
    np.testing.assert_array_equal(decoded["y"], X * 2)
    np.testing.assert_array_equal(decoded["ids_out"], IDS)


def test_typed_int_range_checked() -> None:
    specs = (TensorSpec("b", "INT8", (-1,)),)
    request = pb.ModelInferRequest(model_name="m")
    request.inputs.add(name="b", datatype="INT8", shape=[2]).contents.int_contents.extend([1, 300])
    with pytest.raises(InvalidArgument) as info:
        decode_inputs(request, specs)
    assert info.value.violations[0].field == "inputs[0].contents.int_contents"


def test_dynamic_dimensions_are_bounded() -> None:
    """A decoder's sequence axis or an encoder's batch axis cannot be asked to any size: the run's work (and
    memory: attention grows with the square of the length) follows them."""
    from maas_runtime.kserve import DynamicLimits

    specs = (TensorSpec("input_ids", "INT64", (-1, -1)),)
    limits = DynamicLimits.of({"context_length": 8192})
    assert (limits.rows, limits.length, limits.elements) == (64, 8192, 16384)

    def request(shape: list[int]) -> pb.ModelInferRequest:
        r = pb.ModelInferRequest(model_name="m")
        r.inputs.add(name="input_ids", datatype="INT64", shape=shape)
        r.raw_input_contents.append(np.zeros(int(np.prod(shape)), "<i8").tobytes())
        return r

    assert decode_inputs(request([2, 8192]), specs, limits)["input_ids"].shape == (2, 8192)
    for shape, says in (([1, 8193], "at most 8192"), ([65, 8], "at most 64"), ([4, 8192], "32768 elements")):
        with pytest.raises(InvalidArgument) as info:
            decode_inputs(request(shape), specs, limits)
        assert info.value.violations[0].field == "inputs[0].shape" and says in info.value.message, shape
    assert decode_inputs(request([100, 100]), specs)["input_ids"].shape == (100, 100)  # no limits: none


# ---- over gRPC --------------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_server_live_ready_and_metadata(served: Served) -> None:
    stub = served.stub
    assert (await stub.ServerLive(pb.ServerLiveRequest())).live is True
    assert (await stub.ServerReady(pb.ServerReadyRequest())).ready is True
    served.state["ready"] = False
    assert (await stub.ServerReady(pb.ServerReadyRequest())).ready is False
    meta = await stub.ServerMetadata(pb.ServerMetadataRequest())
    assert (meta.name, meta.version, list(meta.extensions)) == ("maas-test", "0.0.1", [])


@pytest.mark.asyncio
async def test_model_metadata(served: Served) -> None:
    meta = await served.stub.ModelMetadata(pb.ModelMetadataRequest(name="double"))
    assert meta.name == "double" and list(meta.versions) == ["1"] and meta.platform == "onnxruntime_onnx"
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("x", "FP32", [-1, 4]),
                                                                          ("ids", "INT64", [-1])]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [("y", "FP32", [-1, 4]),
                                                                           ("ids_out", "INT64", [-1])]
    echo = await served.stub.ModelMetadata(pb.ModelMetadataRequest(name="echo", version="1"))
    assert [(t.name, t.datatype) for t in echo.inputs] == [("text", "BYTES")]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.stub.ModelMetadata(pb.ModelMetadataRequest(name="nope"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.asyncio
async def test_model_ready(served: Served) -> None:
    stub = served.stub
    assert (await stub.ModelReady(pb.ModelReadyRequest(name="double"))).ready is True
    assert (await stub.ModelReady(pb.ModelReadyRequest(name="double", version="1"))).ready is True
    for request in (pb.ModelReadyRequest(name="nope"), pb.ModelReadyRequest(name="double", version="2")):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ModelReady(request)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    served.models["double"].ready = False
    assert (await stub.ModelReady(pb.ModelReadyRequest(name="double"))).ready is False
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ModelInfer(raw_request(X, IDS))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.asyncio
async def test_infer_raw(served: Served) -> None:
    response = await served.stub.ModelInfer(raw_request(X, IDS, id="req-1", model_version="1"))
    assert (response.model_name, response.model_version, response.id) == ("double", "1", "req-1")
    assert [(o.name, o.datatype, list(o.shape)) for o in response.outputs] == [
        ("y", "FP32", [2, 4]), ("ids_out", "INT64", [2])]
    out = outputs_of(response)
    np.testing.assert_array_equal(out["y"], X * 2)
    np.testing.assert_array_equal(out["ids_out"], IDS)


@pytest.mark.asyncio
async def test_infer_typed(served: Served) -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5
    ids = np.array([1, 2**40, -(2**40)], dtype=np.int64)
    response = await served.stub.ModelInfer(typed_request(x, ids))
    assert response.id == ""
    out = outputs_of(response)
    np.testing.assert_array_equal(out["y"], x * 2)
    np.testing.assert_array_equal(out["ids_out"], ids)


@pytest.mark.asyncio
async def test_infer_output_subset_and_order(served: Served) -> None:
    request = raw_request(X, IDS)
    request.outputs.add(name="ids_out")
    response = await served.stub.ModelInfer(request)
    assert [o.name for o in response.outputs] == ["ids_out"] and len(response.raw_output_contents) == 1
    np.testing.assert_array_equal(outputs_of(response)["ids_out"], IDS)
    request = raw_request(X, IDS)
    request.outputs.add(name="ids_out")
    request.outputs.add(name="y")
    response = await served.stub.ModelInfer(request)
    assert [o.name for o in response.outputs] == ["ids_out", "y"]


@pytest.mark.asyncio
async def test_infer_empty_batch(served: Served) -> None:
    response = await served.stub.ModelInfer(raw_request(np.zeros((0, 4), np.float32), np.zeros((0,), np.int64)))
    assert [list(o.shape) for o in response.outputs] == [[0, 4], [0]]


@pytest.mark.asyncio
async def test_infer_bytes_raw_and_typed(served: Served) -> None:
    texts = ["héllo", "", "wörld ✓"]
    raw = pb.ModelInferRequest(model_name="echo")
    raw.inputs.add(name="text", datatype="BYTES", shape=[3])
    raw.raw_input_contents.append(join_bytes(np.array(texts, dtype=object)))
    typed = pb.ModelInferRequest(model_name="echo")
    typed.inputs.add(name="text", datatype="BYTES", shape=[3]).contents.bytes_contents.extend(
        [t.encode() for t in texts])
    for request in (raw, typed):
        response = await served.stub.ModelInfer(request)
        assert [(o.name, o.datatype, list(o.shape)) for o in response.outputs] == [("text_out", "BYTES", [3])]
        assert outputs_of(response)["text_out"].tolist() == texts


def _set(request: pb.ModelInferRequest, **fields: Any) -> pb.ModelInferRequest:
    for k, v in fields.items():
        setattr(request, k, v)
    return request


def _input(i: int, **changes: Any) -> Callable[[pb.ModelInferRequest], None]:
    def mutate(r: pb.ModelInferRequest) -> None:
        for k, v in changes.items():
            if k == "shape":
                del r.inputs[i].shape[:]
                r.inputs[i].shape.extend(v)
            else:
                setattr(r.inputs[i], k, v)
    return mutate


def _raw(i: int, data: bytes) -> Callable[[pb.ModelInferRequest], None]:
    def mutate(r: pb.ModelInferRequest) -> None:
        r.raw_input_contents[i] = data
    return mutate


def _drop_input(i: int) -> Callable[[pb.ModelInferRequest], None]:
    def mutate(r: pb.ModelInferRequest) -> None:
        del r.inputs[i]
        del r.raw_input_contents[i]
    return mutate


def _duplicate_x(r: pb.ModelInferRequest) -> None:
    r.inputs[1].CopyFrom(r.inputs[0])
    r.raw_input_contents[1] = r.raw_input_contents[0]


def _mixed(r: pb.ModelInferRequest) -> None:
    r.inputs[0].contents.fp32_contents.extend(X.ravel().tolist())


def _typed(mutate: Callable[[pb.ModelInferRequest], None]) -> Callable[[], pb.ModelInferRequest]:
    def build() -> pb.ModelInferRequest:
        r = typed_request(X, IDS)
        mutate(r)
        return r
    return build


def _raw_case(mutate: Callable[[pb.ModelInferRequest], None]) -> Callable[[], pb.ModelInferRequest]:
    def build() -> pb.ModelInferRequest:
        r = raw_request(X, IDS)
        mutate(r)
        return r
    return build


def _echo_raw(data: bytes, shape: list[int]) -> Callable[[], pb.ModelInferRequest]:
    def build() -> pb.ModelInferRequest:
        r = pb.ModelInferRequest(model_name="echo")
        r.inputs.add(name="text", datatype="BYTES", shape=shape)
        r.raw_input_contents.append(data)
        return r
    return build


def _nan_x(r: pb.ModelInferRequest) -> None:
    bad = X.copy()
    bad[1, 2] = np.nan
    r.raw_input_contents[0] = bad.astype("<f4").tobytes()


def _inf_typed(r: pb.ModelInferRequest) -> None:
    r.inputs[0].contents.fp32_contents[3] = float("inf")


def _typed_wrong_field(r: pb.ModelInferRequest) -> None:
    r.inputs[0].contents.Clear()
    r.inputs[0].contents.int64_contents.extend([1] * 8)


def _typed_short(r: pb.ModelInferRequest) -> None:
    del r.inputs[1].contents.int64_contents[-1]


def _typed_missing(r: pb.ModelInferRequest) -> None:
    r.inputs[1].ClearField("contents")


def _output(*names: str) -> Callable[[pb.ModelInferRequest], None]:
    def mutate(r: pb.ModelInferRequest) -> None:
        for n in names:
            r.outputs.add(name=n)
    return mutate


def _shared_memory(r: pb.ModelInferRequest) -> None:
    r.inputs[0].parameters["shared_memory_region"].string_param = "region0"


NOT_FOUND, INVALID = grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT
BAD_REQUESTS: list[tuple[str, Callable[[], pb.ModelInferRequest], grpc.StatusCode, str | None]] = [
    ("unknown model", _raw_case(lambda r: _set(r, model_name="nope")), NOT_FOUND, None),
    ("unknown version", _raw_case(lambda r: _set(r, model_version="2")), NOT_FOUND, None),
    ("no model name", _raw_case(lambda r: _set(r, model_name="")), INVALID, "model_name"),
    ("no inputs", lambda: pb.ModelInferRequest(model_name="double"), INVALID, "inputs"),
    ("missing input", _raw_case(_drop_input(1)), INVALID, "inputs"),
    ("empty input name", _raw_case(_input(1, name="")), INVALID, "inputs[1].name"),
    ("unknown input", _raw_case(_input(1, name="idz")), INVALID, "inputs[1].name"),
    ("duplicate input", _raw_case(_duplicate_x), INVALID, "inputs[1].name"),
    ("datatype mismatch", _raw_case(_input(1, datatype="INT32")), INVALID, "inputs[1].datatype"),
    ("empty datatype", _raw_case(_input(0, datatype="")), INVALID, "inputs[0].datatype"),
    ("rank mismatch", _raw_case(_input(0, shape=[8])), INVALID, "inputs[0].shape"),
    ("fixed dim mismatch", _raw_case(_input(0, shape=[4, 2])), INVALID, "inputs[0].shape"),
    ("negative dim", _raw_case(_input(1, shape=[-2])), INVALID, "inputs[1].shape"),
    ("raw size vs shape", _raw_case(_input(0, shape=[3, 4])), INVALID, "raw_input_contents[0]"),
    ("raw too short", _raw_case(_raw(1, b"\x00" * 15)), INVALID, "raw_input_contents[1]"),
    ("raw entry count", _raw_case(lambda r: r.raw_input_contents.pop()), INVALID, "raw_input_contents"),
    ("raw NaN", _raw_case(_nan_x), INVALID, "raw_input_contents[0]"),
    ("raw and typed mixed", _raw_case(_mixed), INVALID, "inputs[0].contents"),
    ("typed inf", _typed(_inf_typed), INVALID, "inputs[0].contents.fp32_contents"),
    ("typed wrong field", _typed(_typed_wrong_field), INVALID, "inputs[0].contents.int64_contents"),
    ("typed count vs shape", _typed(_typed_short), INVALID, "inputs[1].contents.int64_contents"),
    ("typed missing", _typed(_typed_missing), INVALID, "inputs[1].contents"),
    ("unknown output", _raw_case(_output("z")), INVALID, "outputs[0].name"),
    ("duplicate output", _raw_case(_output("y", "y")), INVALID, "outputs[1].name"),
    ("shared memory", _raw_case(_shared_memory), INVALID, "inputs[0].parameters"),
    ("bytes truncated prefix", _echo_raw(b"\x05\x00", [1]), INVALID, "raw_input_contents[0]"),
    ("bytes overrun", _echo_raw(b"\x05\x00\x00\x00ab", [1]), INVALID, "raw_input_contents[0]"),
    ("bytes count", _echo_raw(join_bytes(np.array(["a", "b"], dtype=object)), [3]), INVALID,
     "raw_input_contents[0]"),
    ("bytes not utf-8", _echo_raw(b"\x02\x00\x00\x00\xff\xfe", [1]), INVALID, "raw_input_contents[0]"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("build, code, field", [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS])
async def test_bad_requests(served: Served, build: Callable[[], pb.ModelInferRequest], code: grpc.StatusCode,
                            field: str | None) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.stub.ModelInfer(build())
    assert info.value.code() == code, info.value.details()
    if field is not None:
        assert violations(info.value) == [field], info.value.details()
        assert info.value.details().startswith(field + ":")
    # The server still answers, and correctly.
    assert (await served.stub.ServerLive(pb.ServerLiveRequest())).live
    np.testing.assert_array_equal(outputs_of(await served.stub.ModelInfer(raw_request(X, IDS)))["y"], X * 2)


@pytest.mark.asyncio
async def test_with_the_runtime_interceptor(repository: Path) -> None:
    """Unchanged servicer behind the runtime's own interceptor: same statuses, details, plus the request id."""
    from maas_runtime.interceptors import ServiceInterceptor

    async for served in _start(repository, ServiceInterceptor()):
        bad = raw_request(X, IDS)
        bad.inputs[1].datatype = "FP32"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await served.stub.ModelInfer(bad, metadata=(("x-request-id", "rid-42"),))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(info.value) == ["inputs[1].datatype"]
        assert ("x-request-id", "rid-42") in tuple(info.value.trailing_metadata())
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await served.stub.ModelReady(pb.ModelReadyRequest(name="nope"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        out = outputs_of(await served.stub.ModelInfer(raw_request(X, IDS)))
        np.testing.assert_array_equal(out["y"], X * 2)


# ---- NVIDIA's own client ------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_tritonclient_against_our_server(served: Served) -> None:
    x = [[1.0, 2.0, 3.0, 4.0], [0.25, -8.0, 1e6, 0.0], [5.0, 6.0, 7.0, 8.5]]
    ids = [10, -20, 30]
    rc, result, stderr = await triton_check(served.address, "double", {"x": x, "ids": ids}, "--request-id", "nv-1")
    assert rc == 0, (result, stderr)
    assert result["ok"] and result["server_live"] and result["server_ready"] and result["model_ready"]
    assert result["server_metadata"] == {"name": "maas-test", "version": "0.0.1", "extensions": []}
    assert result["model_metadata"] == {
        "name": "double", "versions": ["1"], "platform": "onnxruntime_onnx",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]},
                   {"name": "ids", "datatype": "INT64", "shape": [-1]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 4]},
                    {"name": "ids_out", "datatype": "INT64", "shape": [-1]}]}
    infer = result["infer"]
    assert (infer["model_name"], infer["model_version"], infer["id"]) == ("double", "1", "nv-1")
    assert infer["outputs"]["y"]["datatype"] == "FP32" and infer["outputs"]["y"]["shape"] == [3, 4]
    np.testing.assert_array_equal(np.array(infer["outputs"]["y"]["data"], dtype=np.float32),
                                  np.array(x, dtype=np.float32) * 2)
    assert infer["outputs"]["ids_out"] == {"datatype": "INT64", "shape": [3], "data": ids}


@pytest.mark.asyncio
async def test_tritonclient_bytes_and_errors(served: Served) -> None:
    texts = ["héllo", "", "wörld ✓"]
    rc, result, stderr = await triton_check(served.address, "echo", {"text": texts}, "--request-id", "nv-1")
    assert rc == 0, (result, stderr)
    assert result["infer"]["outputs"]["text_out"] == {"datatype": "BYTES", "shape": [3], "data": texts}
    # An input the server refuses: tritonclient reports the status, the script exits non-zero.
    rc, result, _ = await triton_check(served.address, "double", {"x": [[1.0, 2.0, 3.0]]}, "--request-id", "nv-1")
    assert rc != 0 and not result["ok"]
    assert "INVALID_ARGUMENT" in result["error"]["status"] and "inputs[0].shape" in result["error"]["message"]
    rc, result, _ = await triton_check(served.address, "nope", {}, "--request-id", "nv-1")
    assert rc != 0 and "NOT_FOUND" in result["error"]["status"]
