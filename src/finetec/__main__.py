"""``python -m finetec`` == the ``finetec`` command (also how Lightning's DDP launcher re-runs it)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
