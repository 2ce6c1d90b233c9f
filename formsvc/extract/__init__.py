"""Ingestion: input -> pages -> identify -> align -> fields -> record -> validation."""
