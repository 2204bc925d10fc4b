"""Deterministic OpenAI-compatible dev model server (standard library only); see ``devmodel.server``."""
