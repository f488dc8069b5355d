"""ONNX model wrapper: session creation, provider choice and strict GPU mode, I/O contract, warm-up.

A model lives in a Triton-shaped repository: ``<repository>/<name>/<version>/model.onnx`` with a
``manifest.json`` beside it (written by ``maas_modelbuild``). One ``InferenceSession`` per model,
shared by every request; ``infer`` runs it on the runtime's bounded executor, never on the event loop.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from maas_runtime import metrics
from maas_runtime.executor import BoundedExecutor
from maas_runtime.settings import ModelSettings

log = logging.getLogger("maas.model")

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_PROVIDER_ALIASES = {"cuda": CUDA, "cpu": CPU, "tensorrt": "TensorrtExecutionProvider"}

# ONNX element types <-> Open Inference Protocol datatypes <-> numpy.
ORT_TO_DATATYPE = {
    "tensor(float)": "FP32", "tensor(float16)": "FP16", "tensor(double)": "FP64",
    "tensor(int64)": "INT64", "tensor(int32)": "INT32", "tensor(int16)": "INT16", "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8", "tensor(bool)": "BOOL", "tensor(string)": "BYTES",
}
DATATYPE_TO_NUMPY = {
    "FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32,
    "INT16": np.int16, "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_, "BYTES": np.object_,
}


class ModelLoadError(RuntimeError):
    """The model cannot be served as configured; the server refuses to start."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str  # Open Inference Protocol name: FP32, INT64, ...
    shape: tuple[int, ...]  # -1 for a dynamic dimension

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(DATATYPE_TO_NUMPY[self.datatype])

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def resolve_providers(spec: str) -> list[str]:
    """``auto`` → CUDA when this ONNX Runtime build offers it, then CPU; else the named list, in order."""
    available = ort.get_available_providers()
    if spec.strip().lower() == "auto":
        return ([CUDA] if CUDA in available else []) + [CPU]
    names = [_PROVIDER_ALIASES.get(p.strip().lower(), p.strip()) for p in spec.split(",") if p.strip()]
    missing = [n for n in names if n not in available]
    if missing:
        log.warning("providers not in this onnxruntime build, skipped", extra={"missing": missing,
                                                                            "available": available})
    names = [n for n in names if n in available]
    return names or [CPU]


def variant(model: str, precision: str, repository: Path, providers: str) -> str:
    """The folder of ``model`` at ``precision`` (fp32: ``model`` itself, else ``model-<precision>``). ``auto``:
    the float16 build under CUDA when the repository has it (else float32, logged), float32 on the CPU."""
    if precision == "auto":
        if resolve_providers(providers)[0] != CUDA:
            return model
        if not (Path(repository) / f"{model}-fp16").is_dir():
            log.warning("no float16 build for CUDA: serving float32", extra={"model": model})
            return model
        precision = "fp16"
    return model if precision == "fp32" else f"{model}-{precision}"


def _specs(args: list[Any]) -> tuple[TensorSpec, ...]:
    return tuple(
        TensorSpec(a.name, ORT_TO_DATATYPE.get(a.type, a.type),
                   tuple(d if isinstance(d, int) and d >= 0 else -1 for d in a.shape))
        for a in args
    )


class OnnxModel:
    platform = "onnxruntime_onnx"

    def __init__(self, name: str, version: int, directory: Path, manifest: dict[str, Any],
                 session: ort.InferenceSession, executor: BoundedExecutor) -> None:
        self.name = name
        self.version = version
        self.directory = directory
        self.manifest = manifest
        self.session = session
        self.executor = executor
        self.inputs = _specs(session.get_inputs())
        self.outputs = _specs(session.get_outputs())
        self.provider = session.get_providers()[0]
        self.ready = False

    # ---- loading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, repository: Path, name: str, settings: ModelSettings, executor: BoundedExecutor,
             version: int | None = None) -> "OnnxModel":
        base = Path(repository) / name
        if version is None:
            versions = sorted((int(p.name) for p in base.glob("*") if p.name.isdigit()), reverse=True)
            if not versions:
                raise ModelLoadError(f"model {name!r} not found in {repository}: run `make models`")
            version = versions[0]
        directory = base / str(version)
        path = directory / "model.onnx"
        if not path.exists():
            raise ModelLoadError(f"{path} is missing: run `make models`")
        manifest = json.loads((directory / "manifest.json").read_text()) if (directory / "manifest.json").exists() else {}

        wanted = resolve_providers(settings.providers)
        if CUDA in wanted and hasattr(ort, "preload_dlls"):
            try:  # CUDA/cuDNN from pip wheels (onnxruntime-gpu >= 1.21)
                ort.preload_dlls()
            except Exception:  # noqa: BLE001 - a missing library is reported below as a fallback
                log.warning("onnxruntime.preload_dlls failed", exc_info=True)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = settings.ort_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), sess_options=opts, providers=wanted)
        model = cls(name, version, directory, manifest, session, executor)
        if settings.require_gpu and model.provider != CUDA:
            raise ModelLoadError(
                f"model {name} v{version}: a GPU is required (MAAS require_gpu) but it runs on {model.provider}; "
                f"asked for {wanted}, this onnxruntime offers {ort.get_available_providers()}")
        if wanted[0] != model.provider:
            log.warning("execution provider fell back", extra={"model": name, "wanted": wanted[0],
                                                                "provider": model.provider})
        model._check_contract()
        metrics.MODEL_PROVIDER.labels(name, str(version), model.provider).set(1)
        log.info("model loaded", extra={"model": name, "version": version, "provider": model.provider,
                                        "precision": model.precision,
                                        "providers": session.get_providers(), "threads": opts.intra_op_num_threads})
        return model

    def _check_contract(self) -> None:
        """The graph must expose what the manifest promises (names and datatypes), or serving code breaks."""
        for kind, actual in (("inputs", self.inputs), ("outputs", self.outputs)):
            promised = {t["name"]: t["datatype"] for t in self.manifest.get(kind, [])}
            have = {t.name: t.datatype for t in actual}
            for tname, dtype in promised.items():
                if have.get(tname) != dtype:
                    raise ModelLoadError(f"model {self.name}: manifest {kind} {tname}:{dtype} but graph has "
                                         f"{have}: rebuild with `make models`")

    # ---- running ---------------------------------------------------------------------------------
    def run(self, feeds: dict[str, np.ndarray], output_names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Synchronous run (executor threads, build tools). Records per-model latency and batch size."""
        started = time.perf_counter()
        names = output_names or [o.name for o in self.outputs]
        values = self.session.run(names, feeds)
        metrics.MODEL_LATENCY.labels(self.name).observe(time.perf_counter() - started)
        first = next(iter(feeds.values()), None)
        if first is not None and getattr(first, "ndim", 0):
            metrics.MODEL_BATCH_SIZE.labels(self.name).observe(first.shape[0])
        return dict(zip(names, values))

    def run_bound(self, binding: ort.IOBinding, batch: int) -> None:
        """Synchronous run with IO binding (inputs and outputs placed by the caller), with the same metrics."""
        started = time.perf_counter()
        self.session.run_with_iobinding(binding)
        metrics.MODEL_LATENCY.labels(self.name).observe(time.perf_counter() - started)
        metrics.MODEL_BATCH_SIZE.labels(self.name).observe(batch)

    async def infer(self, feeds: dict[str, np.ndarray], output_names: list[str] | None = None) -> dict[str, np.ndarray]:
        return await self.executor.run(self.run, feeds, output_names)

    def warmup_feeds(self) -> dict[str, np.ndarray]:
        """A batch-1 input built from the graph's own signature (dynamic dimensions as 8)."""
        feeds = {}
        for spec in self.inputs:
            shape = [1 if i == 0 and d == -1 else (8 if d == -1 else d) for i, d in enumerate(spec.shape)]
            feeds[spec.name] = np.ones(shape, dtype=spec.dtype)
        return feeds

    async def warmup(self, feeds: dict[str, np.ndarray] | None = None) -> None:
        started = time.perf_counter()
        await self.infer(feeds or self.warmup_feeds())
        self.ready = True
        log.info("model warm", extra={"model": self.name, "ms": round((time.perf_counter() - started) * 1e3, 1)})

    # ---- metadata --------------------------------------------------------------------------------
    @property
    def precision(self) -> str:
        """The weights' precision as built: fp32, fp16 or int8 (the manifest's ``precision``, else its
        ``quantization`` bits)."""
        if "precision" in self.manifest:
            return str(self.manifest["precision"])
        bits = (self.manifest.get("quantization") or {}).get("bits")
        return f"int{bits}" if bits else "fp32"

    @property
    def build_key(self) -> str:
        return str(self.manifest.get("recipe_key", ""))

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "platform": self.platform, "provider": self.provider,
            "precision": self.precision, "build_key": self.build_key, "inputs": [t.as_dict() for t in self.inputs],
            "outputs": [t.as_dict() for t in self.outputs],
        }
