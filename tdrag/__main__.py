"""``python -m tdrag ...`` (also what ``torchrun -m tdrag train ...`` runs)."""

import sys

try:
    from tdrag.cli import main
except KeyboardInterrupt:  # Ctrl-C before the command line is even read: one line, as from main
    print("interrupted", file=sys.stderr)
    raise SystemExit(130) from None

if __name__ == "__main__":
    raise SystemExit(main())
