"""Builds every model of the suite from offline sources: ``python -m maas_modelbuild``."""
