"""``python -m maas_modelbuild [--repository models] [--only a,b] [--force] [--list]``"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from maas_modelbuild.core import build_all
from maas_modelbuild.recipes import RECIPES


def main() -> None:
    ap = argparse.ArgumentParser(prog="maas_modelbuild", description=__doc__)
    ap.add_argument("--repository", type=Path, default=Path("models"))
    ap.add_argument("--only", help="comma-separated model names (dependencies are built too)")
    ap.add_argument("--force", action="store_true", help="rebuild even when cached")
    ap.add_argument("--list", action="store_true", help="list recipes and their budgets")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.list:
        for r in RECIPES:
            print(f"{r.name:20s} v{r.version}  budget {r.budget_s:5d}s  {r.description}")
        return
    started = time.monotonic()
    only = set(args.only.split(",")) if args.only else None
    build_all(RECIPES, args.repository, only=only, force=args.force)
    logging.getLogger("maas.modelbuild").info("models ready in %s (%.0fs)", args.repository, time.monotonic() - started)


if __name__ == "__main__":
    main()
