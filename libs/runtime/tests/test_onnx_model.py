import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from maas_runtime.executor import BoundedExecutor
from maas_runtime.onnx_model import CPU, ModelLoadError, OnnxModel, resolve_providers
from maas_runtime.settings import ModelSettings


def write_model(repo, name="double", manifest_outputs=None):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["y"])], name, [x], [y], [two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    d = repo / name / "1"
    d.mkdir(parents=True)
    onnx.save(model, str(d / "model.onnx"))
    (d / "manifest.json").write_text(json.dumps({
        "name": name, "version": 1, "recipe_key": "k1",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": manifest_outputs or [{"name": "y", "datatype": "FP32", "shape": [-1, 4]}]}))
    return d


def test_auto_providers_fall_back_to_cpu_without_cuda():
    assert resolve_providers("auto")[-1] == CPU
    assert resolve_providers("cpu") == [CPU]
    assert resolve_providers("tensorrt,cpu")[-1] == CPU


async def test_loads_runs_off_the_loop_and_reports_metadata(tmp_path):
    write_model(tmp_path)
    ex = BoundedExecutor(1)
    m = OnnxModel.load(tmp_path, "double", ModelSettings(providers="cpu"), ex)
    assert m.provider == CPU and m.version == 1 and m.build_key == "k1"
    assert m.metadata()["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    out = await m.infer({"x": np.ones((3, 4), np.float32)})
    assert np.array_equal(out["y"], np.full((3, 4), 2.0, np.float32))
    await m.warmup()
    assert m.ready
    ex.shutdown()


def test_strict_gpu_mode_refuses_cpu(tmp_path):
    write_model(tmp_path)
    with pytest.raises(ModelLoadError, match="GPU is required"):
        OnnxModel.load(tmp_path, "double", ModelSettings(require_gpu=True), BoundedExecutor(1))


def test_graph_that_breaks_the_manifest_contract_is_refused(tmp_path):
    write_model(tmp_path, manifest_outputs=[{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}])
    with pytest.raises(ModelLoadError, match="probabilities"):
        OnnxModel.load(tmp_path, "double", ModelSettings(), BoundedExecutor(1))


def test_missing_model_names_the_fix(tmp_path):
    with pytest.raises(ModelLoadError, match="make models"):
        OnnxModel.load(tmp_path, "nope", ModelSettings(), BoundedExecutor(1))


def test_auto_precision_takes_float16_under_cuda_only_when_built(tmp_path, monkeypatch):
    from maas_runtime import onnx_model

    (tmp_path / "lm").mkdir()
    assert onnx_model.variant("lm", "auto", tmp_path, "auto") == "lm"  # this machine: the CPU provider
    assert onnx_model.variant("lm", "int8", tmp_path, "cpu") == "lm-int8"
    monkeypatch.setattr(onnx_model, "resolve_providers", lambda spec: [onnx_model.CUDA, CPU])
    assert onnx_model.variant("lm", "auto", tmp_path, "auto") == "lm"  # no float16 build: float32
    (tmp_path / "lm-fp16").mkdir()
    assert onnx_model.variant("lm", "auto", tmp_path, "auto") == "lm-fp16"
    assert onnx_model.variant("lm", "fp32", tmp_path, "auto") == "lm"
