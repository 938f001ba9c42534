"""Use cases that both faces call: the CLI (``gbdesk <verb>``) and the GUI (``gbdesk.ui``).

No Qt and no argparse here: a function takes plain values and callbacks (progress, a cancel
``threading.Event``) and returns a plain value or raises a :class:`gbdesk.errors.GbdeskError`.

- :mod:`~gbdesk.app.chat_client`: stream a chat reply from the backend
- :mod:`~gbdesk.app.chat_store`: conversations kept on disk
- :mod:`~gbdesk.app.metrics`: the backend's figures for the Dashboard
- :mod:`~gbdesk.app.shard_actions`: register, check and unregister this node
- :mod:`~gbdesk.app.catalog_refresh`: refresh catalogue entries from the Hub's headers
- :mod:`~gbdesk.app.hub_search`: search the Hub for GGUF models, a fit verdict per quant
"""
