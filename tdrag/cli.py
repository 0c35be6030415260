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
    from tdrag.errors import quiet_teardown

    try:
        return _main(argv)
    except KeyboardInterrupt:  # also while the commands' modules are still being imported
        print("interrupted", file=sys.stderr)
        quiet_teardown()
        return 130


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    # tdrag's own progress at INFO; other libraries' INFO lines (torch's exit-time statistics)
    # would only bury a command's last line, its result or its one error line.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("tdrag").setLevel(logging.INFO)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from tdrag.config import ConfigError
    from tdrag.errors import TdragError, error_message

    try:
        return int(args.func(args) or 0)
    except (TdragError, OSError, ValueError, MemoryError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {error_message(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``, taking a command's list arguments (``KEY=VALUE`` overrides, videos) wherever
    they stand among its options, as argparse takes options anywhere: ``a=1 --no-progress b=2``.

    argparse fills a ``nargs="*"`` positional from its first run of tokens only; the later ones
    come back unrecognised and are appended here (a command names its list with the ``intermixed``
    default). Unknown options still end in argparse's usage error.
    """
    args, extra = parser.parse_known_args(argv)
    dest = getattr(args, "intermixed", None)
    if extra and dest and not any(token.startswith("-") for token in extra):
        setattr(args, dest, [*(getattr(args, dest) or []), *extra])
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args
