"""The chart's NATS TLS switches: client TLS (certificates from a Secret) and mutually
authenticated cluster routes. The rendered config, with real certificates (made here with the
system's ``openssl``) in place of the mounted Secret, is checked by the real ``nats-server -t``;
then a server running it is reached by a service connecting the way the chart configures it
(``QUANTOPS_NATS_TLS_CA``), and a plain-TCP client is refused."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import nats
import pytest
import yaml
from nats.errors import Error as NatsError

from shared import natsauth
from shared.bus import connect_nats
from shared.natsserver import free_port, server_binary
from shared.settings import Settings
from tests.deploy.helmchart import (
    CHART,
    NAMESPACE,
    RELEASE,
    containers,
    env_of,
    named,
    nats_config,
    service_workloads,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

TLS_VALUES: dict[str, Any] = {"nats": {
    "tls": {"enabled": True, "secretName": "nats-client-tls"},
    "cluster": {"tls": {"enabled": True, "secretName": "nats-route-tls"}}}}


def _render(values: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    with helm_python.Chart.load(CHART) as chart:
        files = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    return tuple(d for path, text in sorted(files.items()) if not path.endswith("NOTES.txt")
                 for d in yaml.safe_load_all(text) if d)


def _certs(directory: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1/localhost, as cert-manager would issue."""
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=qo-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    (directory / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "tls.key",
        "-out", "tls.csr")
    run("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf", "-out", "tls.crt")
    return directory


def _local_conf(tmp: Path, docs: tuple[dict[str, Any], ...], port: int) -> Path:
    certs = _certs(tmp / "certs")
    conf = nats_config(docs)
    for kind in ("client", "cluster"):
        conf = conf.replace(f"/etc/nats/tls/{kind}/", f"{certs}/")
    conf = conf.replace("/data/jetstream", str(tmp / "js"))
    conf = conf.replace("/var/run/nats/nats.pid", str(tmp / "nats.pid"))
    conf = conf.replace("0.0.0.0:4222", f"127.0.0.1:{port}")
    conf = conf.replace("0.0.0.0:6222", f"127.0.0.1:{free_port()}")
    conf = conf.replace("0.0.0.0:8222", f"127.0.0.1:{free_port()}")
    path = tmp / "nats.conf"
    path.write_text(conf)
    return path


def _server_env() -> dict[str, str]:
    return {"SERVER_NAME": "qo-0",
            **{f"NATS_PASSWORD_{u.upper()}": f"pw-{u}" for u in natsauth.USERS}}


def test_tls_switches_render_a_config_nats_server_accepts(tmp_path: Path) -> None:
    docs = _render(TLS_VALUES)
    conf = nats_config(docs)
    assert "/etc/nats/tls/client/tls.crt" in conf and "verify: true" in conf
    path = _local_conf(tmp_path, docs, free_port())
    ok = subprocess.run([str(server_binary()), "-c", str(path), "-t"], env=_server_env(),
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    # Certificates from the Secrets, mounted where the config reads them.
    sts = named(docs, "StatefulSet", "nats")
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls-client"]["secret"]["secretName"] == "nats-client-tls"
    assert volumes["tls-cluster"]["secret"]["secretName"] == "nats-route-tls"
    # Services dial tls:// and trust the CA.
    [c] = containers(service_workloads(docs)["state"])
    env = env_of(c)
    assert env["QUANTOPS_NATS_URL"]["value"].startswith("tls://")
    assert env["QUANTOPS_NATS_TLS_CA"]["value"] == "/etc/quantops/nats-tls/ca.crt"


def test_tls_off_by_default() -> None:
    conf = nats_config(_render({}))
    assert "tls {" not in conf


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A nats-server running the chart's TLS config; yields its port and the CA file."""
    port = free_port()
    path = _local_conf(tmp_path, _render(TLS_VALUES), port)
    server = subprocess.Popen([str(server_binary()), "-c", str(path)], env=_server_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield port, tmp_path / "certs" / "ca.crt"
    server.terminate()
    server.wait(timeout=10)


async def test_services_connect_over_the_rendered_tls(tls_server: tuple[int, Path]) -> None:
    port, ca = tls_server
    settings = Settings.from_env({
        "QUANTOPS_NATS_URL": f"tls://127.0.0.1:{port}", "QUANTOPS_NATS_USER": "cli",
        "QUANTOPS_NATS_PASSWORD": "pw-cli", "QUANTOPS_NATS_TLS_CA": str(ca)})
    nc = await connect_nats(settings, name="tls-test", connect_timeout_s=10)
    assert nc.is_connected
    await nc.close()
    with pytest.raises((NatsError, OSError, TimeoutError)):  # no TLS, no connection
        await nats.connect(f"nats://127.0.0.1:{port}", user="cli", password="pw-cli",
                           connect_timeout=2, max_reconnect_attempts=0,
                           allow_reconnect=False)
