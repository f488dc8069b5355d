"""``python -m maas_client ...``: the ``maas`` command."""

from maas_client.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
