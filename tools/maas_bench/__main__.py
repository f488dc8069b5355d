"""``python -m maas_bench [nlp gateway ...]`` — every benchmark by default."""

from __future__ import annotations

import sys

from maas_bench import gateway, nlp, recommender, textgen

BENCHES = {"nlp": nlp.run, "gateway": gateway.run, "textgen": textgen.run, "recommender": recommender.run}


def main() -> None:
    names = sys.argv[1:] or list(BENCHES)
    for name in names:
        for line in BENCHES[name]():
            print(line, flush=True)


if __name__ == "__main__":
    main()
