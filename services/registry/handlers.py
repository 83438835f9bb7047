"""Subject -> handler: the registry's whole request/reply surface, one line per subject (the
Structs and roles of each are declared in ``shared.operations``).

Handlers only unpack the principal from the context and call the operation; the operations
raise ``QuantopsError``s, which the bus turns into error replies.
"""

from __future__ import annotations

from services.registry.aliases import Aliases
from services.registry.datasets import Datasets
from services.registry.reads import Reads
from services.registry.registration import Registrar
from services.registry.retention import Retention
from shared.bus import Context, Handler
from shared.contracts import datasets as d
from shared.contracts import registry as c
from shared.contracts.base import Empty
from shared.contracts.registry import PRODUCTION
from shared.roles import Role
from shared.subjects import DatasetSubject as D
from shared.subjects import RegistrySubject as S

ANONYMOUS = "anonymous"


def principal(ctx: Context) -> str:
    return ctx.principal or ANONYMOUS


class Handlers:
    """One method per subject, each a thin call into the operation that owns it."""

    def __init__(self, reg: Registrar, reads: Reads, aliases: Aliases,
                 retention: Retention) -> None:
        self.reg, self.reads, self.aliases, self.retention = reg, reads, aliases, retention

    async def begin(self, req: c.BeginUpload, ctx: Context) -> c.UploadTicket:
        return await self.reg.begin(req, principal(ctx))

    async def upload(self, req: c.UploadRequest, ctx: Context) -> c.UploadTicket:
        return await self.reg.ticket(req.upload_id)

    async def commit(self, req: c.CommitUpload, ctx: Context) -> c.VersionInfo:
        return await self.reg.commit(req, principal(ctx))

    async def abort(self, req: c.UploadRequest, ctx: Context) -> Empty:
        await self.reg.abort(req.upload_id)
        return Empty()

    async def register(self, req: c.RegisterVersion, ctx: Context) -> c.VersionInfo:
        return await self.reg.register_inline(req, principal(ctx))

    async def get(self, req: c.VersionRequest, ctx: Context) -> c.VersionInfo:
        return await self.reads.get(req)

    async def versions(self, req: c.ListVersions, ctx: Context) -> c.VersionPage:
        return await self.reads.versions(req)

    async def models(self, req: c.ListModels, ctx: Context) -> c.ModelPage:
        return await self.reads.models(req)

    async def compare(self, req: c.CompareVersions, ctx: Context) -> c.Comparison:
        return await self.reads.compare(req)

    async def audit(self, req: c.ListAudit, ctx: Context) -> c.AuditPage:
        return await self.reads.audit(req)

    async def set_alias(self, req: c.SetAlias, ctx: Context) -> c.AliasChange:
        if req.alias == PRODUCTION:
            ctx.require(Role.ADMIN, f"move {PRODUCTION!r}")
        return await self.aliases.set(req, principal(ctx))

    async def promote(self, req: c.Promote, ctx: Context) -> c.AliasChange:
        return await self.aliases.promote(req, principal(ctx))

    async def rollback(self, req: c.Rollback, ctx: Context) -> c.AliasChange:
        return await self.aliases.rollback(req, principal(ctx))

    async def delete_alias(self, req: c.DeleteAlias, ctx: Context) -> c.AliasChange:
        return await self.aliases.delete(req, principal(ctx))

    async def list_aliases(self, req: c.ModelRequest, ctx: Context) -> c.AliasList:
        return await self.aliases.list(req.model)

    async def delete(self, req: c.DeleteVersion, ctx: Context) -> c.DeleteReply:
        return await self.retention.delete(req, principal(ctx))

    async def cleanup(self, req: c.Cleanup, ctx: Context) -> c.CleanupReply:
        return await self.retention.cleanup(req, principal(ctx))

    def routes(self) -> dict[str, Handler]:
        return {
            S.UPLOAD_BEGIN: self.begin,
            S.UPLOAD_GET: self.upload,
            S.UPLOAD_COMMIT: self.commit,
            S.UPLOAD_ABORT: self.abort,
            S.REGISTER: self.register,
            S.GET: self.get,
            S.LIST: self.versions,
            S.MODELS_LIST: self.models,
            S.COMPARE: self.compare,
            S.AUDIT: self.audit,
            S.ALIAS_SET: self.set_alias,
            S.PROMOTE: self.promote,
            S.ROLLBACK: self.rollback,
            S.ALIAS_DELETE: self.delete_alias,
            S.ALIAS_LIST: self.list_aliases,
            S.DELETE: self.delete,
            S.CLEANUP: self.cleanup,
        }


class DatasetHandlers:
    """``registry.datasets.*`` (``shared.contracts.datasets``): thin calls into ``Datasets``."""

    def __init__(self, datasets: Datasets) -> None:
        self.datasets = datasets

    async def begin(self, req: d.BeginDatasetUpload, ctx: Context) -> d.DatasetTicket:
        return await self.datasets.begin(req, principal(ctx))

    async def commit(self, req: d.CommitDatasetUpload, ctx: Context) -> d.DatasetInfo:
        return await self.datasets.commit(req, principal(ctx))

    async def abort(self, req: d.DatasetUploadRequest, ctx: Context) -> Empty:
        await self.datasets.abort(req.upload_id)
        return Empty()

    async def get(self, req: d.DatasetRequest, ctx: Context) -> d.DatasetInfo:
        return await self.datasets.get(req.ref)

    async def list(self, req: d.ListDatasets, ctx: Context) -> d.DatasetPage:
        return await self.datasets.list(req)

    async def seed_demo(self, req: d.SeedDemo, ctx: Context) -> d.DatasetInfo:
        return await self.datasets.seed_demo(req, principal(ctx))

    def routes(self) -> dict[str, Handler]:
        return {
            D.BEGIN: self.begin,
            D.COMMIT: self.commit,
            D.ABORT: self.abort,
            D.GET: self.get,
            D.LIST: self.list,
            D.SEED_DEMO: self.seed_demo,
        }
