"""`khala keys add|list|revoke`: the CLI over the keys file (khala/gateway/keys.py)."""

from __future__ import annotations

import argparse
import os
import sys

from khala.errors import ConfigError
from khala.gateway.keys import ROLES, add_key, load_keys, revoke_key


def build(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser("keys", help="manage API keys (the gateway's keys_file)")
    cmd.add_argument("--file", default=os.environ.get("KHALA_KEYS_FILE", "khala-keys.toml"),
                     help="the keys file (default $KHALA_KEYS_FILE or %(default)s)")
    actions = cmd.add_subparsers(dest="keys_action", required=True)
    add = actions.add_parser("add", help="create a key and print it (shown only once)")
    add.add_argument("--user", type=int, required=True, help="the user id it acts as")
    add.add_argument("--role", choices=ROLES, required=True)
    actions.add_parser("list", help="list keys (ids, users, roles; never the keys)")
    revoke = actions.add_parser("revoke", help="remove a key; gateways stop taking it at once")
    revoke.add_argument("id", help="the key's id (second part of khala_<id>_…)")


def run(args: argparse.Namespace) -> int:
    try:
        if args.keys_action == "add":
            key, entry = add_key(args.file, args.user, args.role)
            print(key)
            print(f"key {entry.id}: user {entry.user}, role {entry.role} (stored hashed in "
                  f"{args.file}; this is the only time it is shown)", file=sys.stderr)
        elif args.keys_action == "list":
            for e in sorted(load_keys(args.file).values(), key=lambda e: e.created):
                print(f"{e.id}\tuser={e.user}\trole={e.role}\tcreated={e.created}")
        elif not revoke_key(args.file, args.id):
            print(f"khala keys: no key {args.id!r} in {args.file}", file=sys.stderr)
            return 1
    except (ConfigError, OSError) as exc:
        print(f"khala keys: {exc}", file=sys.stderr)
        return 2
    return 0
