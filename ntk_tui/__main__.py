"""``python -m ntk_tui``: the ``ntk-tui`` command."""

import sys

from ntk_tui.cli import main

if __name__ == "__main__":
    sys.exit(main())
