"""Test package (lets tests import tests.support helpers)."""
