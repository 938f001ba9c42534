"""The shard registry: this node as a single-node shard of the General Bots platform.

``embedded`` runs gbdesk's own PostgreSQL, ``migrations`` creates the handbook's sharding schema,
``registry`` registers the node, ``heartbeat`` keeps it marked alive, ``snowflake`` makes IDs with
the chapter's layout, ``crypto`` encrypts stored connection strings, ``commands`` is the CLI.
"""
