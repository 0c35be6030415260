"""Sub-commands of the ``tdrag`` CLI; each module defines ``register(subparsers)``."""
