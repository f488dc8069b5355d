"""Talks to one of our servers with NVIDIA's own KServe v2 client (``tritonclient[grpc]``), prints ONE JSON object.

Runs under ``.venv-triton/bin/python`` (tritonclient pins protobuf < 7): it imports only tritonclient,
numpy and the standard library, never the project's code. Example::

    .venv-triton/bin/python tests/clients/triton_check.py --url 127.0.0.1:50051 --model sentiment \\
        --inputs '{"x": [[1, 2, 3, 4]]}'

It calls is_server_live, is_server_ready, is_model_ready, get_server_metadata, get_model_metadata and
infer. Inputs are built from the model metadata: values given in ``--inputs`` (JSON, nested lists by
input name) are used as they are; an input not given is filled with ones (BYTES: "x"), -1 dimensions as 1.
Outputs come back as nested lists (BYTES as UTF-8 text). Exit status 0 only when the server and model
are live/ready and the inference succeeded; otherwise 1, with an "error" object in the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException, triton_to_np_dtype


def _tensor_meta(t: Any) -> dict[str, Any]:
    return {"name": t.name, "datatype": t.datatype, "shape": [int(d) for d in t.shape]}


def _array(value: Any, datatype: str, shape: list[int]) -> np.ndarray:
    if datatype == "BYTES":
        if value is None:
            value = np.full([1 if d < 0 else d for d in shape], "x", dtype=object)
        array = np.array(value, dtype=object)
        return np.vectorize(lambda v: v.encode("utf-8") if isinstance(v, str) else v, otypes=[object])(array) \
            if array.size else array
    dtype = triton_to_np_dtype(datatype)
    if dtype is None:
        raise ValueError(f"datatype {datatype} has no numpy equivalent")
    if value is None:
        return np.ones([1 if d < 0 else d for d in shape], dtype=dtype)
    return np.array(value, dtype=dtype)


def _jsonable(array: np.ndarray) -> Any:
    if array.dtype == np.object_:
        return np.vectorize(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else v,
                            otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()


def build_inputs(metadata: Any, given: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    names = [t.name for t in metadata.inputs]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"--inputs names {unknown} are not inputs of the model (it has {names})")
    inputs, sent = [], {}
    for t in metadata.inputs:
        array = _array(given.get(t.name), t.datatype, [int(d) for d in t.shape])
        tensor = grpcclient.InferInput(t.name, list(array.shape), t.datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
        sent[t.name] = {"datatype": t.datatype, "shape": list(array.shape), "data": _jsonable(array),
                        "generated": t.name not in given}
    return inputs, sent


def check(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Fills ``result`` call by call, so what succeeded before a failure is still reported."""
    given = json.loads(args.inputs)
    if not isinstance(given, dict):
        raise ValueError("--inputs must be a JSON object: {\"input name\": nested list, ...}")
    client = grpcclient.InferenceServerClient(url=args.url)
    try:
        timeout = args.timeout
        result["server_live"] = client.is_server_live(client_timeout=timeout)
        result["server_ready"] = client.is_server_ready(client_timeout=timeout)
        result["model_ready"] = client.is_model_ready(args.model, args.model_version, client_timeout=timeout)
        server = client.get_server_metadata(client_timeout=timeout)
        result["server_metadata"] = {"name": server.name, "version": server.version,
                                     "extensions": list(server.extensions)}
        meta = client.get_model_metadata(args.model, args.model_version, client_timeout=timeout)
        result["model_metadata"] = {"name": meta.name, "versions": list(meta.versions), "platform": meta.platform,
                                    "inputs": [_tensor_meta(t) for t in meta.inputs],
                                    "outputs": [_tensor_meta(t) for t in meta.outputs]}
        inputs, result["inputs"] = build_inputs(meta, given)
        wanted = [n for n in (args.outputs or "").split(",") if n]
        outputs = [grpcclient.InferRequestedOutput(n) for n in wanted] or None
        answer = client.infer(args.model, inputs, model_version=args.model_version, outputs=outputs,
                              request_id=args.request_id, client_timeout=timeout)
        response = answer.get_response()
        result["infer"] = {
            "model_name": response.model_name, "model_version": response.model_version, "id": response.id,
            "outputs": {o.name: {"datatype": o.datatype, "shape": [int(d) for d in o.shape],
                                 "data": _jsonable(answer.as_numpy(o.name))} for o in response.outputs},
        }
        result["ok"] = bool(result["server_live"] and result["server_ready"] and result["model_ready"])
        if not result["ok"]:
            result["error"] = {"status": "NOT_READY", "message": "server or model not live/ready"}
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True, help="host:port of the gRPC server")
    parser.add_argument("--model", required=True, help="model name")
    parser.add_argument("--model-version", default="", help="model version (default: the server's choice)")
    parser.add_argument("--inputs", default="{}", help='JSON object of input values, e.g. \'{"x": [[1, 2]]}\'')
    parser.add_argument("--outputs", default="", help="comma-separated output names (default: all)")
    parser.add_argument("--request-id", default="triton-check")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"url": args.url, "model": args.model, "ok": False}
    try:
        check(args, result)
    except InferenceServerException as e:
        result["ok"] = False
        result["error"] = {"status": str(e.status()), "message": e.message()}
    except Exception as e:  # noqa: BLE001 - reported in the JSON, exit status 1
        result["ok"] = False
        result["error"] = {"status": type(e).__name__, "message": str(e)}
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
