import sys

from forex_assets.cli import main

sys.exit(main())
