"""``python -m fastnst`` runs the command line."""

import sys

from fastnst.cli import main

sys.exit(main())
