"""``python -m maas_bench [nlp gateway ...]`` — every benchmark by default."""

from __future__ import annotations

import sys

from maas_bench import binding, gateway, music, nlp, recommender, textgen

BENCHES = {"nlp": nlp.run, "gateway": gateway.run, "textgen": textgen.run, "music": music.run,
           "recommender": recommender.run, "binding": binding.run}


def main() -> None:
    names = sys.argv[1:] or list(BENCHES)
    for name in names:
        for line in BENCHES[name]():
            print(line, flush=True)


if __name__ == "__main__":
    main()
