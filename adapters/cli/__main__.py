"""``python -m adapters.cli``: the same as the ``pingjing`` command."""

import sys

from adapters.cli import main

sys.exit(main())
