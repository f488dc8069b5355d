"""Real upstream servers on 127.0.0.1:0 (the runtime's ModelServer, as the services use it) and gateways in front.

Upstreams of the default gateway:
- ``nlp-analysis``: a stand-in ``maas.nlp.v1.NlpAnalysis`` (maas_gateway.testing.stub_nlp) and the KServe model
  ``double``;
- ``echo``: ``maas.testing.v1.Echo`` (every RPC shape, delays, failures) and the KServe model ``triple``.
The two tiny ONNX models are built here with onnx.helper, so these tests need no model build.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import grpc
import onnx
import pytest
from onnx import TensorProto, helper

from maas_gateway.testing import (CHANNEL_OPTIONS, Pki, Running, UpstreamConfig, echo_upstream, gateway, make_pki,
                                  nlp_upstream)
from maas_runtime.executor import BoundedExecutor
from maas_runtime.onnx_model import OnnxModel
from maas_runtime.settings import ModelSettings


# ---- models --------------------------------------------------------------------------------------------------
def _scale_model(repo: Path, name: str, factor: float) -> None:
    k = helper.make_tensor("k", TensorProto.FLOAT, [], [factor])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], initializer=[k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="test")
    model.ir_version = 8
    directory = repo / name / "1"
    directory.mkdir(parents=True)
    onnx.save(model, str(directory / "model.onnx"))
    (directory / "manifest.json").write_text(json.dumps({
        "name": name, "version": 1, "recipe_key": "test",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 4]}]}))


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("models")
    _scale_model(repo, "double", 2.0)
    _scale_model(repo, "triple", 3.0)
    return repo


@pytest.fixture(scope="session")
def executor() -> Any:
    pool = BoundedExecutor(1)
    yield pool
    pool.shutdown()


async def load_models(repository: Path, executor: BoundedExecutor, *names: str) -> list[OnnxModel]:
    settings = ModelSettings(providers="cpu", executor_workers=1, intra_op_threads=1)
    models = [OnnxModel.load(repository, n, settings, executor) for n in names]
    for m in models:
        await m.warmup()
    return models


# ---- upstreams -----------------------------------------------------------------------------------------------
@dataclass
class Suite:
    nlp: Running
    echo: Running

    def upstreams(self) -> dict[str, UpstreamConfig]:
        return {"nlp-analysis": UpstreamConfig(target=self.nlp.address),
                "echo": UpstreamConfig(target=self.echo.address)}


@pytest.fixture(scope="session")
async def suite(repository: Path, executor: BoundedExecutor) -> AsyncIterator[Suite]:
    double, triple = await load_models(repository, executor, "double", "triple")
    async with nlp_upstream([double]) as nlp, echo_upstream(models=[triple]) as echo:
        yield Suite(nlp, echo)


@pytest.fixture(scope="session")
async def gw(suite: Suite) -> AsyncIterator[tuple[Any, str]]:
    async with gateway(suite.upstreams()) as started:
        yield started


@pytest.fixture(scope="session")
async def channel(gw: tuple[Any, str]) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(gw[1], options=CHANNEL_OPTIONS) as ch:
        yield ch




@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))
