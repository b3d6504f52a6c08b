"""Typed agents: each asks a model for a pydantic object and never returns an unvalidated one."""
