"""``python3 -m mimo``: the mimo-rpc command line, for when the script is not installed."""
import sys

from mimo.cli import main

sys.exit(main())
