"""Tests of the download manager and the model library."""
