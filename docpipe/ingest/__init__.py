"""Ingestion: a folder of files -> `Document` records with text, elements and provenance."""
