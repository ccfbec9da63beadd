"""Qdrant adapter for vectorseam."""
