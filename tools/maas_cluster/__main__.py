"""``python -m maas_cluster {up,down,status,demo}`` (see ``python -m maas_cluster --help``)."""

from maas_cluster.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
