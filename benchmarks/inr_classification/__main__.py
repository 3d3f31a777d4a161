"""``python -m benchmarks.inr_classification``: see ``--help``."""

import sys

from .cli import main

sys.stdout.reconfigure(errors="backslashreplace")  # a --out that is not UTF-8 prints escaped
try:
    main()
except OSError as err:  # a folder in use, read-only, full …: the message says what to do
    raise SystemExit(f"error: {err}") from None
