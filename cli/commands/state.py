"""``quantops state get|put|ls``: namespaced, versioned key-value state."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from cli.commands.common import command, json_value
from cli.commands.output import epoch, print_json, print_table, size
from shared.clients.http import Client


def register(sub: Any) -> None:
    p = sub.add_parser("state", help="key-value state through the gateway")
    cmds = p.add_subparsers(dest="state_command", required=True)
    get = command(cmds, "get", get_value, "print a key's value (JSON); revision on stderr")
    get.add_argument("namespace")
    get.add_argument("key")
    get.add_argument("--revision", type=int, help="a past revision")
    put = command(cmds, "put", put_value, "write a key; prints the new revision")
    put.add_argument("namespace")
    put.add_argument("key")
    put.add_argument("value", type=json_value, help="JSON document, @file or - (stdin)")
    guard = put.add_mutually_exclusive_group()
    guard.add_argument("--if-revision", type=int, help="compare-and-set: only if at this one")
    guard.add_argument("--create", action="store_true", help="only if the key does not exist")
    put.add_argument("--ttl", type=int, help="the key expires after this many seconds")
    ls = command(cmds, "ls", list_keys, "keys of a namespace, or every namespace")
    ls.add_argument("namespace", nargs="?")
    ls.add_argument("--prefix", default="")


def get_value(args: argparse.Namespace, client: Client) -> None:
    reply = client.state.get(args.namespace, args.key, revision=args.revision)
    if args.json:
        return print_json(reply)
    value = msgspec.json.decode(reply.value)
    print(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())
    print(f"revision {reply.revision}, updated {epoch(reply.updated_at)}", file=sys.stderr)


def put_value(args: argparse.Namespace, client: Client) -> None:
    expected = 0 if args.create else args.if_revision
    reply = client.state.put(args.namespace, args.key, args.value, expected_revision=expected,
                             ttl_s=args.ttl)
    if args.json:
        return print_json(reply)
    print(reply.revision)


def list_keys(args: argparse.Namespace, client: Client) -> None:
    if args.namespace is None:
        spaces = client.state.namespaces().namespaces
        if args.json:
            return print_json(spaces)
        print_table(["namespace", "keys", "bytes", "limit", "used"],
                    [(n.namespace, n.keys, size(n.bytes), size(n.max_total_bytes),
                      f"{100 * n.bytes / n.max_total_bytes:.1f}%") for n in spaces])
        return None
    keys = list(client.state.iter_keys(args.namespace, prefix=args.prefix))
    if args.json:
        return print_json(keys)
    print_table(["key", "revision", "size", "updated", "expires"],
                [(k.key, k.revision, size(k.size_bytes), epoch(k.updated_at),
                  epoch(k.expires_at)) for k in keys])
