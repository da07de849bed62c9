"""``python -m parsec_fast.cli``: the ``parsec-fast`` command."""
from __future__ import annotations

import sys

from . import main

sys.exit(main())
