"""The first admin: on a first start with no users, an ``admin`` user and one API key.

There is no default password. The key is either supplied by the deployment
(``QUANTOPS_GATEWAY_BOOTSTRAP_API_KEY``, e.g. from a Kubernetes Secret, and then neither written
nor printed: the deployment knows it) or generated, written to
``<data_dir>/gateway/admin-api-key`` (mode 0600) and printed once to stdout, like a one-time
setup token. A later start finds the user and does nothing.

Several gateways sharing one store (KV) may start at once: the store lets exactly one create the
user. They all hold the same configured key, and the admin's uid is derived from its key id, so
the key works whichever replica won (a key is bound to its owner's uid).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from services.gateway.auth import credentials
from services.gateway.auth.authenticator import LiveView
from services.gateway.auth.credentials import Argon2Runner
from services.gateway.auth.roles import Role
from services.gateway.auth.store import AuthStore, KeyRow, UserRow
from shared.settings import SettingsError

log = logging.getLogger(__name__)

ADMIN = "admin"
KEY_FILE_NAME = "admin-api-key"

_BANNER = """
================================================================================
 quantops: first start. An admin user was created with this API key. It is shown
 once; it is also in {path} (readable only by you).

     {key}

 Use it as:  curl -H "Authorization: Bearer $(cat {path})" ...
 Then create your own keys (POST /v1/keys) and users (POST /v1/users).
================================================================================
"""


def _key_parts(configured: str) -> tuple[str, str, str]:
    if not configured:
        return credentials.new_api_key()
    parsed = credentials.parse_api_key(configured)
    if parsed is None:
        raise SettingsError(
            "invalid configuration QUANTOPS_GATEWAY_BOOTSTRAP_API_KEY: it must look like "
            "qo_<8-32 lower-case letters or digits>_<32-128 of A-Z a-z 0-9 _ ->")
    return parsed[0], parsed[1], configured


def admin_uid(key_id: str) -> str:
    """The first admin's uid: the same on every replica that holds the same bootstrap key."""
    return hashlib.sha256(f"quantops-bootstrap-admin:{key_id}".encode()).hexdigest()[:32]


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file was there before with other permissions
    with os.fdopen(fd, "w") as f:
        f.write(text)


async def bootstrap_admin(store: AuthStore, view: LiveView, runner: Argon2Runner, *,
                          configured_key: str, key_dir: Path,
                          out: TextIO | None = None) -> bool:
    """Create the first admin if there is no user; True when this call created it."""
    if view.users:
        return False
    key_id, secret, key = _key_parts(configured_key)
    now = time.time()
    user = UserRow(name=ADMIN, uid=admin_uid(key_id), role=Role.ADMIN, password_hash=None,
                   created_at=now)
    row = KeyRow(id=key_id, user=ADMIN, label="bootstrap", role=None,
                 secret_hash=await runner.hash(credentials.KEY_HASHER, secret),
                 created_at=now, expires_at=None, revoked_at=None, uid=user.uid)
    path = key_dir / KEY_FILE_NAME
    # Written before the commit and renamed after it: a crash in between leaves the key on
    # disk rather than an admin nobody can reach; a lost race leaves nothing.
    staged = key_dir / f".{KEY_FILE_NAME}.{os.getpid()}"
    if not configured_key:
        _write_private(staged, key + "\n")
    created = False
    try:
        created = await store.create_first_admin(user, row)
    finally:
        if not created and not configured_key:
            staged.unlink(missing_ok=True)
    if not created:
        return False
    if configured_key:
        log.info("first start: created user admin with the configured bootstrap key")
        return True
    staged.replace(path)
    print(_BANNER.format(path=path, key=key), file=out or sys.stdout, flush=True)
    log.info("first start: created user admin; its API key is in the key file",
             extra={"key_file": str(path)})
    return True
