"""The PySide6 desktop app. The only package of gbdesk that imports Qt."""
