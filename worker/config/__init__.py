"""Behaviour from `configs` rows: one pydantic model per key, and the live copy the worker reads."""
