"""``python -m benchmarks.inr_editing``: see ``--help``."""

from .cli import main

main()
