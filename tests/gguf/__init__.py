"""Tests of gbdesk.gguf, the GGUF metadata reader."""
