"""Helpers shared by the test suites: a local Hugging Face Hub, test files."""
