"""``python -m tdrag ...`` (also what ``torchrun -m tdrag train ...`` runs)."""

from tdrag.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
