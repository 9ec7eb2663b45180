"""The engine: the worker's router and deliverers, between the adapters and the core."""
