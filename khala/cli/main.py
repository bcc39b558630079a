"""The `khala` command: `up` (a whole local cluster) or one node per command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from khala import __version__
from khala.cli import images as images_cli
from khala.cli import keys as keys_cli
from khala.cli import problems as problems_cli
from khala.cli import tasks as tasks_cli
from khala.config import (
    ExecutorSettings,
    GatewaySettings,
    JudicatorSettings,
    UpSettings,
    add_flags,
    load,
)
from khala.errors import ConfigError

COMMANDS: dict[str, tuple[type, str]] = {
    "up": (UpSettings, "start etcd, a judicator, executors and the gateway on this machine"),
    "judicator": (JudicatorSettings, "serve the Judicator Thrift API over a store"),
    "executor": (ExecutorSettings, "run tasks leased from judicators in sandboxes"),
    "gateway": (GatewaySettings, "serve the HTTP API under gunicorn"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="khala", description="Khala judge cluster")
    parser.add_argument("--version", action="version", version=f"khala {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (cls, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--config", default=None, help=f"TOML file; section [{name}]")
        add_flags(cmd, cls)
    tasks_cli.build(sub)
    keys_cli.build(sub)
    problems_cli.build(sub)
    images_cli.build(sub)
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s[%(process)d]: %(message)s",
        stream=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in tasks_cli.COMMANDS:
        return tasks_cli.run(args)
    if args.command == "keys":
        return keys_cli.run(args)
    if args.command == "problem":
        return problems_cli.run(args)
    if args.command == "image":
        return images_cli.run(args)
    cls, _ = COMMANDS[args.command]
    flags: dict[str, Any] = {k: v for k, v in vars(args).items() if k not in {"command", "config"}}
    try:
        settings: Any = load(cls, args.command, config_file=args.config, flags=flags)
    except ConfigError as exc:
        print(f"khala {args.command}: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    if args.command == "up" and args.config:
        # the nodes `up` starts read their own sections from the same file, exactly as with
        # KHALA_CONFIG=FILE khala up (they inherit the environment)
        os.environ["KHALA_CONFIG"] = os.path.abspath(args.config)
    try:
        return _dispatch(args.command, settings)
    except ConfigError as exc:
        logging.getLogger("khala").error("%s", exc)
        return 2


def _dispatch(command: str, settings: Any) -> int:
    if command == "judicator":
        from khala.judicator.server import run as run_judicator

        run_judicator(settings)
        return 0
    if command == "executor":
        from khala.executor.node import run as run_executor

        return run_executor(settings)
    if command == "gateway":
        from khala.metrics.gateway import prepare_multiprocess

        prepare_multiprocess()  # before prometheus_client is imported: workers add up
        from khala.gateway import run as run_gateway

        run_gateway(settings)
        return 0
    from khala.cli.up import run as run_up

    return run_up(settings)
