"""The errors of the shard registry: each says what went wrong and what to do, never a password."""

from __future__ import annotations

from gbdesk.errors import ExitCode, GbdeskError, UsageError


class ShardError(GbdeskError):
    """A registration step failed (base class of the shard registry's errors)."""


class InvalidShardOptionError(UsageError):
    """A shard id, region, datacenter or tenant range is not valid."""


class DatabaseUnavailableError(ShardError):
    """The registry's PostgreSQL cannot be reached or refused the login."""

    exit_code = ExitCode.DATABASE_UNAVAILABLE


class ShardConflictError(ShardError):
    """The shard id, tenant range or tenant already belongs to another node or shard."""

    exit_code = ExitCode.SHARD_CONFLICT


class NotRegisteredError(ShardError):
    """This node has no registration in the registry."""


class EmbeddedPostgresError(ShardError):
    """The embedded PostgreSQL could not be created, started or stopped."""


class TenantRouteError(ShardError):
    """A tenant cannot be routed to a node (base class of the routing errors)."""

    exit_code = ExitCode.TENANT_ROUTE


class UnknownTenantError(TenantRouteError):
    """No tenant with that slug is mapped to a shard in the registry."""


class NoLiveNodeError(TenantRouteError):
    """The tenant's shard has no node, or its node has gone silent (stale)."""


class NodeNotReachableError(TenantRouteError):
    """The tenant's node serves on its own machine only (loopback), and the caller is elsewhere."""
