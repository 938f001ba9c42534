"""The main window's pages, each built on first visit."""
