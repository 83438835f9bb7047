"""``quantops keys create|ls|revoke``: API keys (the key itself is shown once)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.commands.common import command
from cli.commands.output import epoch, print_json, print_table
from shared.clients.http import Client


def register(sub: Any) -> None:
    p = sub.add_parser("keys", help="API keys through the gateway")
    cmds = p.add_subparsers(dest="keys_command", required=True)
    create = command(cmds, "create", create_key,
                     "a new API key, printed once on stdout (details on stderr)")
    create.add_argument("--label", default="")
    create.add_argument("--role", choices=["viewer", "operator", "admin"],
                        help="at most the owner's role (default: the owner's)")
    create.add_argument("--expires-in", type=int, metavar="SECONDS")
    create.add_argument("--user", help="admin: a key for another user")
    command(cmds, "ls", list_keys, "API keys (never the secrets)").add_argument("--user")
    revoke = command(cmds, "revoke", revoke_key, "revoke a key (effective at once)")
    revoke.add_argument("key_id", help="the id (qo_<id>_...) or the whole key")


def create_key(args: argparse.Namespace, client: Client) -> None:
    created = client.keys.create(label=args.label, role=args.role,
                                 expires_in_s=args.expires_in, user=args.user)
    if args.json:
        return print_json(created)
    info = created.info
    print(created.key)
    print(f"key {info.id} for {info.user}, role {info.role or 'as the user'}"
          f"{', expires ' + epoch(info.expires_at) if info.expires_at else ''}: "
          "store it now, it is not shown again", file=sys.stderr)


def list_keys(args: argparse.Namespace, client: Client) -> None:
    keys = list(client.keys.iter(user=args.user))
    if args.json:
        return print_json(keys)
    print_table(["id", "user", "label", "role", "created", "expires", "active"],
                [(k.id, k.user, k.label, k.role or "(user's)", epoch(k.created_at),
                  epoch(k.expires_at), "yes" if k.active else "no") for k in keys])


def revoke_key(args: argparse.Namespace, client: Client) -> None:
    key_id = args.key_id.split("_")[1] if args.key_id.startswith("qo_") else args.key_id
    client.keys.revoke(key_id)
    if args.json:
        return print_json({"revoked": key_id})
    print(f"revoked {key_id}")
