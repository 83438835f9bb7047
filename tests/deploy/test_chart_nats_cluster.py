"""The chart's own NATS configuration runs a three-server JetStream cluster.

The rendered ConfigMap is taken as it is; only what a pod provides differently from a
machine is moved: the listen addresses and ports (loopback, free ports), the volume paths,
and the peers' StatefulSet DNS names (loopback route ports). Everything else (cluster name,
JetStream limits and fsync policy, lame duck, authorization) is what Kubernetes would run.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import natsauth
from shared.natscluster import MemberPorts
from shared.natsserver import free_port, server_binary
from tests.deploy.helmchart import nats_config, render
from tests.deploy.natsutil import connect_as
from tests.support import eventually_sync

PASSWORDS = {u: f"pw-{u}" for u in natsauth.USERS}


def localize(conf: str, i: int, members: list[MemberPorts], tmp: Path) -> str:
    """Member ``i``'s config: the chart's, with pod addresses and paths moved to this
    machine."""
    own = members[i]
    swaps = {
        r"listen: 0\.0\.0\.0:4222": f"listen: 127.0.0.1:{own.client}",
        r"http: 0\.0\.0\.0:8222": f"http: 127.0.0.1:{own.monitor}",
        r"listen: 0\.0\.0\.0:6222": f"listen: 127.0.0.1:{own.route}",
        r"/data/jetstream": str(tmp / f"n{i}" / "jetstream"),
        r"/var/run/nats/nats\.pid": str(tmp / f"n{i}" / "nats.pid"),
    }
    for pattern, replacement in swaps.items():
        conf, count = re.subn(pattern, replacement, conf)
        assert count == 1, f"the chart's nats.conf no longer has {pattern!r}"
    # nats://<release>-quantops-nats-<j>.<headless>.<ns>.svc.cluster.local:6222
    conf, count = re.subn(r"nats://\S+-nats-(\d+)\.\S+:6222",
                          lambda m: f"nats://127.0.0.1:{members[int(m.group(1))].route}", conf)
    assert count == len(members)
    return conf


@pytest.fixture
def chart_cluster(tmp_path: Path) -> Iterator[list[MemberPorts]]:
    conf = nats_config(render("production"))
    members = [MemberPorts(free_port(), free_port(), free_port()) for _ in range(3)]
    env = {f"NATS_PASSWORD_{u.upper()}": pw for u, pw in PASSWORDS.items()}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(3):
            (tmp_path / f"n{i}").mkdir()
            path = tmp_path / f"n{i}" / "nats.conf"
            path.write_text(localize(conf, i, members, tmp_path))
            member_env = {**env, "SERVER_NAME": f"qo-quantops-nats-{i}"}
            checked = subprocess.run([str(server_binary()), "-c", str(path), "-t"],
                                     env=member_env, capture_output=True, text=True, timeout=30)
            assert checked.returncode == 0, checked.stderr
            with open(tmp_path / f"n{i}" / "server.log", "wb") as log:
                procs.append(subprocess.Popen([str(server_binary()), "-c", str(path)],
                                              env=member_env, stdout=log, stderr=log))
        yield members
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)


def jsz(member: MemberPorts) -> dict:
    url = f"http://127.0.0.1:{member.monitor}/jsz?accounts=true&streams=true&config=true"
    with urllib.request.urlopen(url, timeout=2) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def wait_for_meta_leader(members: list[MemberPorts], timeout_s: float = 60) -> str:
    def common_leader() -> str | None:
        try:
            leaders = {jsz(m).get("meta_cluster", {}).get("leader") for m in members}
        except OSError:  # a member not listening yet
            return None
        return str(leaders.pop()) if len(leaders) == 1 and not {None, ""} & leaders else None

    return eventually_sync(common_leader, timeout_s=timeout_s, interval_s=0.2,
                           what="a common meta leader of the chart's three servers")


async def test_chart_config_forms_a_cluster_that_replicates(
        chart_cluster: list[MemberPorts]) -> None:
    leader = wait_for_meta_leader(chart_cluster)
    assert leader.startswith("qo-quantops-nats-")
    urls = [f"nats://127.0.0.1:{m.client}" for m in chart_cluster]
    # The state service's own user, as the chart authorises it, creates its R3 bucket.
    nc = await connect_as(urls[0], "state", PASSWORDS["state"])
    try:
        js = nc.jetstream(timeout=30)  # an R3 create waits for an election; the machine is shared
        kv = await js.create_key_value(bucket="quantops_state", history=64, replicas=3)
        revision = await kv.put("k", b"v")
        assert revision == 1
        info = await js.stream_info("KV_quantops_state")
        assert info.config.num_replicas == 3
        assert info.cluster is not None and info.cluster.leader
        assert len(info.cluster.replicas or []) == 2
    finally:
        await nc.close()
    # The write is readable through another member, and every member holds a copy.
    other = await connect_as(urls[2], "state", PASSWORDS["state"])
    try:
        entry = await (await other.jetstream().key_value("quantops_state")).get("k")
        assert entry.value == b"v"
    finally:
        await other.close()
    streams = [s["name"] for m in chart_cluster for a in jsz(m).get("account_details", [])
               for s in a.get("stream_detail", [])]
    assert streams.count("KV_quantops_state") == 3
