"""The gateway: one port in front of every service of the suite (``python -m maas_gateway``)."""

__version__ = "1"
