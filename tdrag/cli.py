"""The ``tdrag`` command: one argparse sub-command per module in ``tdrag.commands``.

Each command module defines ``register(subparsers)``, which adds its parser and sets
``func(args) -> int`` as the default. Importing a command module must be cheap (no torch work at
import time beyond ``import torch``), so that ``tdrag --help`` answers quickly.

Failures a user can cause (``tdrag.errors.TdragError`` and its kinds, an ``OSError`` such as a
full disk or a permission denied, a bad value) end as one line ``error: <path or key>: <what is
wrong>`` on stderr and exit status 1 (2 for a bad config value or argument); ``-v`` adds the
traceback. Commands therefore raise, and print only their results.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

# Order shown in `tdrag --help`.
COMMANDS = [
    "tdrag.commands.synth",
    "tdrag.commands.prepare",
    "tdrag.commands.train",
    "tdrag.commands.eval",
    "tdrag.commands.cv",
    "tdrag.commands.demo",
    "tdrag.commands.predict",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tdrag",
        description="Dynamic facial expression recognition with TDRAG: data, training, evaluation, prediction.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from tdrag.config import ConfigError
    from tdrag.errors import TdragError, describe_os_error

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (TdragError, OSError, ValueError, MemoryError) as exc:
        if args.verbose:
            traceback.print_exc()
        if isinstance(exc, TdragError) or not isinstance(exc, OSError):
            message = " ".join(str(exc).split()) or type(exc).__name__
        else:
            message = describe_os_error(exc)
        if isinstance(exc, MemoryError):
            message = f"out of memory ({message}); use a smaller batch or fewer workers"
        print(f"error: {message}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
