"""numpy <-> KServe v2 tensors for ``Inference.infer``: inputs go as ``raw_input_contents`` (little-endian,
row-major; BYTES elements as a 4-byte little-endian length then the bytes), answers are read from
``raw_output_contents`` or, from servers that use them, the typed ``contents`` fields."""

from __future__ import annotations

import struct
from typing import Any, Mapping, Sequence

import numpy as np

from inference import grpc_service_pb2 as pb

DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64), "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16), "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
}
_BY_DTYPE = {dtype: name for name, dtype in DATATYPES.items()}
_CONTENTS = {"BOOL": "bool_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
             "UINT32": "uint_contents", "UINT64": "uint64_contents", "INT8": "int_contents",
             "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
             "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}


def datatype_of(array: np.ndarray) -> str:
    if array.dtype.kind in "OSU":
        return "BYTES"
    try:
        return _BY_DTYPE[array.dtype.newbyteorder("=")]
    except KeyError:
        raise ValueError(f"numpy dtype {array.dtype} has no KServe datatype") from None


def as_array(value: Any, datatype: str | None = None) -> tuple[np.ndarray, str]:
    """An array and its KServe datatype (``datatype`` wins over the value's own dtype)."""
    if datatype == "BYTES" or (datatype is None and np.asarray(value).dtype.kind in "OSU"):
        array = np.asarray(value, dtype=object)
        return array, "BYTES"
    if datatype is not None:
        if datatype not in DATATYPES:
            raise ValueError(f"unknown datatype {datatype!r}; one of {', '.join([*DATATYPES, 'BYTES'])}")
        return np.asarray(value, dtype=DATATYPES[datatype]), datatype
    array = np.asarray(value)
    return array, datatype_of(array)


def _encode(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        out = bytearray()
        for item in array.reshape(-1):
            data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
            out += struct.pack("<I", len(data)) + data
        return bytes(out)
    return np.ascontiguousarray(array, dtype=DATATYPES[datatype].newbyteorder("<")).tobytes()


def infer_request(model: str, inputs: Mapping[str, Any], datatypes: Mapping[str, str], outputs: Sequence[str],
                  version: str = "", request_id: str = "") -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model, model_version=version, id=request_id)
    for name, value in inputs.items():
        array, datatype = as_array(value, datatypes.get(name))
        request.inputs.add(name=name, datatype=datatype, shape=list(array.shape))
        request.raw_input_contents.append(_encode(array, datatype))
    for name in outputs:
        request.outputs.add(name=name)
    return request


def _decode_bytes(raw: bytes) -> list[bytes]:
    items, pos = [], 0
    while pos < len(raw):
        (n,) = struct.unpack_from("<I", raw, pos)
        items.append(raw[pos + 4: pos + 4 + n])
        pos += 4 + n
    return items


def outputs(response: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(response.outputs):
        shape = [int(d) for d in tensor.shape]
        if i < len(response.raw_output_contents):
            raw = response.raw_output_contents[i]
            if tensor.datatype == "BYTES":
                flat = np.empty(len(items := _decode_bytes(raw)), dtype=object)
                flat[:] = items
            else:
                flat = np.frombuffer(raw, dtype=DATATYPES[tensor.datatype].newbyteorder("<"))
        else:
            values = list(getattr(tensor.contents, _CONTENTS[tensor.datatype]))
            flat = np.array(values, dtype=object if tensor.datatype == "BYTES" else DATATYPES[tensor.datatype])
        out[tensor.name] = flat.reshape(shape)
    return out
