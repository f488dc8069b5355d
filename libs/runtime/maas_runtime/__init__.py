"""The shared serving runtime: everything every service and the gateway need, in one package."""
