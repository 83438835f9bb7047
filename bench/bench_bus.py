"""The bus's own cost: request/reply through ``shared.bus`` (decode, validate, trace, metrics,
encode) beside a bare nats-py request/reply with the same payload, same server, same run.

    python -m bench.bench_bus
"""

from __future__ import annotations

import nats
import uvloop

from bench.common import run_load, start_server, table
from shared.bus import Bus, Context
from shared.contracts.base import Message
from shared.operations import Operation
from shared.roles import Role
from shared.settings import Settings
from shared.telemetry import setup_tracing


class Echo(Message):
    key: str
    n: int


async def main() -> None:
    server = start_server()
    setup_tracing("bench", Settings.from_env({}).telemetry)
    try:
        settings = Settings.from_env({"QUANTOPS_NATS_URL": server.url})
        svc = await Bus.connect(settings, service="bench")
        client = await Bus.connect(settings, service="client")

        async def echo(req: Echo, ctx: Context) -> Echo:
            return req

        await svc.serve(Operation("bench.echo", Echo, Echo, Role.VIEWER, "echo"), echo)
        raw_srv = await nats.connect(server.url)
        raw_cli = await nats.connect(server.url)

        async def raw_handler(msg: nats.aio.msg.Msg) -> None:
            await msg.respond(msg.data)

        await raw_srv.subscribe("bench.raw", queue="raw", cb=raw_handler)
        await raw_srv.flush()
        payload = b'{"key":"positions/AAPL","n":1}'

        async def via_bus(i: int) -> object:
            return await client.request("bench.echo", Echo(key="positions/AAPL", n=i), Echo)

        async def via_raw(i: int) -> object:
            return await raw_cli.request("bench.raw", payload, timeout=5)

        rows = []
        for conc in (1, 64):
            n = 3000 if conc == 1 else 20000
            await run_load("warm-up", via_bus, total=500, concurrency=conc)
            rows.append(await run_load(f"raw nats-py request/reply  c={conc}", via_raw,
                                       total=n, concurrency=conc))
            rows.append(await run_load(f"shared.bus request/reply   c={conc}", via_bus,
                                       total=n, concurrency=conc))
        print(table(rows, baseline={rows[1].name: rows[0].name, rows[3].name: rows[2].name}))
        for c in (svc, client):
            await c.close()
        await raw_srv.close()
        await raw_cli.close()
    finally:
        server.stop()


if __name__ == "__main__":
    uvloop.run(main())
