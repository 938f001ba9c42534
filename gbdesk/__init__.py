"""gbdesk: the General Bots desktop node.

Probe the machine, recommend a local GGUF model that fits, download it, run it as an
OpenAI-compatible bot backend and register the node as a single-node shard.
"""

__version__ = "0.1.0"
