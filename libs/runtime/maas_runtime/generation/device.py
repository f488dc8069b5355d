"""Where a decoder's KV cache lives between steps: host numpy arrays, or ``OrtValue``s on the session's device.

The engine needs five things of a cache buffer ``[batch, heads, columns, head_dim]``: an empty one, its
column count, rows and columns taken out of it (left / right zero padding added), several stacked as one
batch, and new columns written into it. ``HostStore`` does them with numpy, writing new columns into a
buffer's spare ones in place. ``DeviceStore`` keeps every buffer as an ``OrtValue`` on the model's device
(CUDA memory under the CUDA provider) and does the same five things with tiny ONNX graphs run on that device
through IO binding, one run for all layers at once: the cache never crosses the bus. Only the last position's
logits come back to the host, where the sampler reads them; token ids, the attention mask and position ids
(a few kilobytes) go to the device with each step.

On the CPU provider ``DeviceStore`` runs the very same code (``OrtValue``s in host memory): that is how it is
tested here, token for token against ``HostStore``. ONNX Runtime has no in-place write, so a
``DeviceStore`` write copies the buffer once a step (on a GPU that is a device-memory copy, ~1 % of a step's
bandwidth for the models here; on the CPU it is why ``HostStore`` stays the default there, see ``make bench``).
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np
import onnxruntime as ort

Buffer = Any  # np.ndarray (HostStore) or ort.OrtValue (DeviceStore)
Block = tuple[Sequence[Buffer], "Sequence[int] | None", int, int]  # buffers, rows (None: all), start, end


class CacheStore(Protocol):
    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> Buffer: ...

    def columns(self, buf: Buffer) -> int: ...

    def nbytes(self, buf: Buffer) -> int: ...

    def take(self, bufs: Sequence[Buffer], rows: Sequence[int] | None, start: int, end: int, left: int = 0,
             right: int = 0) -> list[Buffer]:
        """Rows ``rows`` (None: all), columns ``[start, end)``, with ``left`` / ``right`` zero columns around
        them: always a new buffer (the source may be written to later)."""

    def gather(self, blocks: Sequence[Block], width: int, spare: int) -> list[Buffer]:
        """Each block's rows (None: all) and columns ``[start, end)``, one block after the other along the batch
        axis, right-aligned at column ``width`` (zeros before), with ``spare`` zero columns after."""

    def write(self, bufs: Sequence[Buffer], new: Sequence[Buffer], at: int) -> list[Buffer]:
        """``new``'s columns into columns ``[at, at + n)`` of each buffer (which has room for them)."""


class HostStore:
    """numpy buffers; ``write`` writes in place (the engine's spare columns)."""

    device = "cpu"

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def columns(self, buf: np.ndarray) -> int:
        return int(buf.shape[2])

    def nbytes(self, buf: np.ndarray) -> int:
        return int(buf.nbytes)

    def take(self, bufs: Sequence[np.ndarray], rows: Sequence[int] | None, start: int, end: int, left: int = 0,
             right: int = 0) -> list[np.ndarray]:
        out = []
        for src in bufs:
            block = src[:, :, start:end] if rows is None else src[list(rows)][:, :, start:end]
            dst = np.zeros((block.shape[0], block.shape[1], left + block.shape[2] + right, block.shape[3]),
                           dtype=src.dtype)
            dst[:, :, left:left + block.shape[2]] = block
            out.append(dst)
        return out

    def gather(self, blocks: Sequence[Block], width: int, spare: int) -> list[np.ndarray]:
        first = blocks[0][0]
        batch = sum(len(b[0][0]) if b[1] is None else len(b[1]) for b in blocks)
        out = [np.zeros((batch, p.shape[1], width + spare, p.shape[3]), dtype=p.dtype) for p in first]
        row = 0
        for bufs, rows, start, end in blocks:
            count = len(bufs[0]) if rows is None else len(rows)
            if count and end > start:
                for dst, src in zip(out, bufs):
                    block = src[:, :, start:end] if rows is None else src[list(rows)][:, :, start:end]
                    dst[row:row + count, :, width - (end - start):width] = block
            row += count
        return out

    def write(self, bufs: Sequence[np.ndarray], new: Sequence[np.ndarray], at: int) -> list[np.ndarray]:
        for dst, src in zip(bufs, new):
            dst[:, :, at:at + src.shape[2]] = src
        return list(bufs)


HOST = HostStore()

_ONNX_TYPES = {np.dtype(np.float32): 1, np.dtype(np.float16): 10, np.dtype(np.float64): 11}  # TensorProto


class DeviceStore:
    """``OrtValue`` buffers on the device of ``session``'s first provider; the operations are small ONNX graphs
    (Gather / Slice / Pad / Concat) on the same provider, built once per layer count, dtype and shape of call."""

    def __init__(self, session: ort.InferenceSession, layers: int, dtype: np.dtype) -> None:
        provider = session.get_providers()[0]
        options = session.get_provider_options().get(provider, {})
        self.device = "cuda" if provider == "CUDAExecutionProvider" else "cpu"
        self.device_id = int(options.get("device_id", 0)) if self.device == "cuda" else 0
        self.providers = session.get_providers()
        self.provider_options = [session.get_provider_options().get(p, {}) for p in self.providers]
        self.layers = layers
        self.dtype = np.dtype(dtype)
        self._graphs: dict[tuple, ort.InferenceSession] = {}

    # ---- buffers -----------------------------------------------------------------------------------
    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> ort.OrtValue:
        return ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, dtype=dtype), self.device, self.device_id)

    def from_host(self, array: np.ndarray) -> ort.OrtValue:
        return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), self.device, self.device_id)

    def columns(self, buf: ort.OrtValue) -> int:
        return int(buf.shape()[2])

    def nbytes(self, buf: ort.OrtValue) -> int:
        return int(np.prod(buf.shape())) * self.dtype.itemsize

    # ---- operations --------------------------------------------------------------------------------
    def take(self, bufs: Sequence[ort.OrtValue], rows: Sequence[int] | None, start: int, end: int, left: int = 0,
             right: int = 0) -> list[ort.OrtValue]:
        batch = int(bufs[0].shape()[0])
        index = np.arange(batch, dtype=np.int64) if rows is None else np.asarray(list(rows), dtype=np.int64)
        pads = np.array([0, 0, left, 0, 0, 0, right, 0], dtype=np.int64)
        scalars = {"rows": index, "starts": np.array([start], np.int64), "ends": np.array([end], np.int64),
                   "pads": pads}
        return self._run(self._graph("take"), bufs, scalars)

    def gather(self, blocks: Sequence[Block], width: int, spare: int) -> list[ort.OrtValue]:
        groups = [self.take(bufs, rows, start, end, left=width - (end - start), right=spare)
                  for bufs, rows, start, end in blocks]
        if len(groups) == 1:
            return groups[0]
        return self._run(self._graph("stack", len(groups)), [b for group in groups for b in group], {})

    def write(self, bufs: Sequence[ort.OrtValue], new: Sequence[ort.OrtValue], at: int) -> list[ort.OrtValue]:
        return self._run(self._graph("write"), [*bufs, *new], {"at": np.array([at], np.int64)})

    # ---- the graphs --------------------------------------------------------------------------------
    def _run(self, session: ort.InferenceSession, buffers: Sequence[ort.OrtValue],
             scalars: dict[str, np.ndarray]) -> list[ort.OrtValue]:
        binding = session.io_binding()
        names = [i.name for i in session.get_inputs()]
        for name, buf in zip(names, buffers):
            binding.bind_ortvalue_input(name, buf)
        for name, value in scalars.items():
            binding.bind_cpu_input(name, value)
        for out in session.get_outputs():
            binding.bind_output(out.name, self.device, self.device_id)
        session.run_with_iobinding(binding)
        return list(binding.get_outputs())

    def _graph(self, op: str, parts: int = 1) -> ort.InferenceSession:
        key = (op, parts)
        if key not in self._graphs:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.log_severity_level = 3
            model = _build(op, self.layers, _ONNX_TYPES[self.dtype], parts)
            self._graphs[key] = ort.InferenceSession(model.SerializeToString(), sess_options=opts,
                                                     providers=self.providers,
                                                     provider_options=self.provider_options)
        return self._graphs[key]


def _build(op: str, layers: int, elem: int, parts: int):  # -> onnx.ModelProto
    from onnx import TensorProto, helper

    kv = ["b", "h", "c", "d"]
    n = helper.make_node
    nodes, inputs, outputs, inits = [], [], [], []

    def tensor(name: str, dims: list) -> Any:
        return helper.make_tensor_value_info(name, elem, dims)

    if op == "take":
        inputs = [tensor(f"x{i}", kv) for i in range(layers)]
        inputs += [helper.make_tensor_value_info(s, TensorProto.INT64, [d]) for s, d in
                   (("rows", "r"), ("starts", 1), ("ends", 1), ("pads", 8))]
        inits = [helper.make_tensor("axis2", TensorProto.INT64, [1], [2])]
        for i in range(layers):
            nodes += [n("Gather", [f"x{i}", "rows"], [f"g{i}"], axis=0),
                      n("Slice", [f"g{i}", "starts", "ends", "axis2"], [f"s{i}"]),
                      n("Pad", [f"s{i}", "pads"], [f"y{i}"], mode="constant")]
    elif op == "stack":
        inputs = [tensor(f"x{p}_{i}", kv) for p in range(parts) for i in range(layers)]
        nodes = [n("Concat", [f"x{p}_{i}" for p in range(parts)], [f"y{i}"], axis=0) for i in range(layers)]
    elif op == "write":
        inputs = [tensor(f"x{i}", kv) for i in range(layers)] + [tensor(f"n{i}", kv) for i in range(layers)]
        inputs.append(helper.make_tensor_value_info("at", TensorProto.INT64, [1]))
        inits = [helper.make_tensor("axis2", TensorProto.INT64, [1], [2]),
                 helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
                 helper.make_tensor("end", TensorProto.INT64, [1], [2**62])]
        nodes = [n("Shape", ["n0"], ["shape"], start=2, end=3), n("Add", ["at", "shape"], ["after"])]
        for i in range(layers):
            nodes += [n("Slice", [f"x{i}", "zero", "at", "axis2"], [f"head{i}"]),
                      n("Slice", [f"x{i}", "after", "end", "axis2"], [f"tail{i}"]),
                      n("Concat", [f"head{i}", f"n{i}", f"tail{i}"], [f"y{i}"], axis=2)]
    else:
        raise ValueError(op)
    outputs = [tensor(f"y{i}", kv) for i in range(layers)]
    graph = helper.make_graph(nodes, f"kv-{op}", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model
