"""``python -m ppl_vae`` runs the ``ppl-vae`` command line."""

import sys

from .cli import main

sys.exit(main())
