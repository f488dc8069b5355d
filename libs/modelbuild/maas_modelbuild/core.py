"""Recipe-keyed, cached model builds into a Triton-shaped model repository.

A recipe builds one model into an empty folder and returns the fields of its manifest (I/O contract,
labels, evaluation figures). The build key is a hash of everything that decides the output: the recipe's
source code, its parameters, the versions of the packages it reads weights or data from, and the keys of
the models it depends on. Builds land in a cache outside the checkout (``$MAAS_MODEL_CACHE``, default
``~/.cache/maas/models``) under that key, and are then hard-linked into ``models/<name>/<version>/``, so a
second ``make models`` — or a fresh clone on the same machine — takes seconds.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("maas.modelbuild")

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Recipe:
    """How to build one model. ``build`` writes into ``ctx.out_dir`` and returns manifest fields."""

    name: str
    version: int
    build: Callable[["BuildContext"], dict[str, Any]]
    description: str
    sources: tuple[str, ...] = ()  # distributions that ship the weights / data (versions go in the key)
    params: dict[str, Any] = field(default_factory=dict)
    depends: tuple[str, ...] = ()
    budget_s: int = 60  # the stated build/training budget on the reference machine (2 cores)


@dataclass
class BuildContext:
    recipe: Recipe
    out_dir: Path
    repository: Path  # where dependencies are already installed

    @property
    def params(self) -> dict[str, Any]:
        return self.recipe.params

    def dependency(self, name: str) -> Path:
        """The installed folder of a model this recipe depends on."""
        if name not in self.recipe.depends:
            raise KeyError(f"{self.recipe.name} does not declare a dependency on {name}")
        return model_dir(self.repository, name)


def model_dir(repository: Path, name: str) -> Path:
    """The newest installed version folder of ``name`` in the repository."""
    versions = sorted((int(p.name) for p in (repository / name).iterdir() if p.name.isdigit()), reverse=True)
    if not versions:
        raise FileNotFoundError(f"model {name} is not built in {repository}")
    return repository / name / str(versions[0])


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    return {n: importlib.metadata.version(n) for n in names}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def recipe_key(recipe: Recipe, dep_keys: dict[str, str]) -> str:
    module = inspect.getmodule(recipe.build)
    source = inspect.getsource(module) if module else ""
    common = inspect.getsource(inspect.getmodule(sha256_file))  # this file: the manifest format is part of it
    blob = json.dumps(
        {
            "name": recipe.name,
            "version": recipe.version,
            "params": recipe.params,
            "sources": package_versions(recipe.sources),
            "deps": dep_keys,
            "source": hashlib.sha256(source.encode()).hexdigest(),
            "core": hashlib.sha256(common.encode()).hexdigest(),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cache_root() -> Path:
    return Path(os.environ.get("MAAS_MODEL_CACHE", Path.home() / ".cache" / "maas" / "models"))


def _link_tree(src: Path, dst: Path) -> None:
    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:  # another filesystem: copy
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link)


def installed_key(repository: Path, recipe: Recipe) -> str | None:
    manifest = repository / recipe.name / str(recipe.version) / MANIFEST
    if not manifest.exists():
        return None
    return json.loads(manifest.read_text()).get("recipe_key")


def build(recipe: Recipe, repository: Path, dep_keys: dict[str, str], force: bool = False) -> str:
    """Build (or fetch from cache) and install one recipe; returns its key."""
    key = recipe_key(recipe, dep_keys)
    target = repository / recipe.name / str(recipe.version)
    if not force and installed_key(repository, recipe) == key:
        log.info("%s v%d up to date (%s)", recipe.name, recipe.version, key)
        return key
    cached = cache_root() / recipe.name / key
    if force or not (cached / MANIFEST).exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cached.parent))
        started = time.monotonic()
        log.info("building %s v%d (key %s, budget %ds)", recipe.name, recipe.version, key, recipe.budget_s)
        try:
            fields = recipe.build(BuildContext(recipe, tmp, repository))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        manifest = {
            "name": recipe.name,
            "version": recipe.version,
            "description": recipe.description,
            "recipe_key": key,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.monotonic() - started, 1),
            "budget_seconds": recipe.budget_s,
            "params": recipe.params,
            "sources": package_versions(recipe.sources),
            "depends": dep_keys,
            **fields,
            "files": {
                str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()
            },
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        shutil.rmtree(cached, ignore_errors=True)
        tmp.rename(cached)
        log.info("built %s in %.0fs", recipe.name, manifest["build_seconds"])
    else:
        log.info("%s v%d from cache %s", recipe.name, recipe.version, cached)
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _link_tree(cached, target)
    return key


def build_all(recipes: list[Recipe], repository: Path, only: set[str] | None = None, force: bool = False) -> None:
    by_name = {r.name: r for r in recipes}
    keys: dict[str, str] = {}

    def visit(name: str) -> str:
        if name in keys:
            return keys[name]
        recipe = by_name[name]
        dep_keys = {d: visit(d) for d in recipe.depends}
        keys[name] = build(recipe, repository, dep_keys, force=force and (only is None or name in only))
        return keys[name]

    for r in recipes:
        if only is None or r.name in only:
            visit(r.name)
