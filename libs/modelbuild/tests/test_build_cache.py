import dataclasses
import json

from maas_modelbuild.core import Recipe, build_all, sha256_file

CALLS = []


def toy_build(ctx):
    CALLS.append(ctx.recipe.name)
    (ctx.out_dir / "model.onnx").write_bytes(b"weights-" + str(ctx.params["size"]).encode())
    extra = {}
    if ctx.recipe.depends:
        extra["base_manifest"] = json.loads((ctx.dependency("base") / "manifest.json").read_text())["recipe_key"]
    return {"evaluation": {"accuracy": 0.5}, **extra}


BASE = Recipe(name="base", version=1, build=toy_build, description="toy", params={"size": 1})
HEAD = Recipe(name="head", version=2, build=toy_build, description="toy", params={"size": 2}, depends=("base",))


def test_builds_once_then_is_cached_and_installed_with_a_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("MAAS_MODEL_CACHE", str(tmp_path / "cache"))
    CALLS.clear()
    repo = tmp_path / "models"
    build_all([BASE, HEAD], repo)
    assert CALLS == ["base", "head"]
    manifest = json.loads((repo / "head" / "2" / "manifest.json").read_text())
    assert manifest["files"]["model.onnx"] == sha256_file(repo / "head" / "2" / "model.onnx")
    assert manifest["evaluation"] == {"accuracy": 0.5} and manifest["depends"]["base"]

    build_all([BASE, HEAD], repo)  # second run: nothing to do
    assert CALLS == ["base", "head"]

    fresh = tmp_path / "clone" / "models"  # a fresh checkout on the same machine: installed from the cache
    build_all([BASE, HEAD], fresh)
    assert CALLS == ["base", "head"]
    assert (fresh / "head" / "2" / "model.onnx").read_bytes() == b"weights-2"


def test_changing_a_dependency_rebuilds_what_depends_on_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MAAS_MODEL_CACHE", str(tmp_path / "cache"))
    CALLS.clear()
    repo = tmp_path / "models"
    build_all([BASE, HEAD], repo)
    changed = dataclasses.replace(BASE, params={"size": 3})
    build_all([changed, HEAD], repo)
    assert CALLS == ["base", "head", "base", "head"]
    assert (repo / "base" / "1" / "model.onnx").read_bytes() == b"weights-3"
