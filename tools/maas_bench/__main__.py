"""``python -m maas_bench [nlp ...]`` — every benchmark by default."""

from __future__ import annotations

import sys

from maas_bench import nlp

BENCHES = {"nlp": nlp.run}


def main() -> None:
    names = sys.argv[1:] or list(BENCHES)
    for name in names:
        for line in BENCHES[name]():
            print(line, flush=True)


if __name__ == "__main__":
    main()
