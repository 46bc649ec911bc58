"""``python -m trainlog``: the same as the ``trainlog`` command."""

import sys

from trainlog.cli import main

sys.exit(main())
