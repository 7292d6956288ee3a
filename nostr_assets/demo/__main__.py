"""`python -m nostr_assets.demo`: see run.py."""

import sys

from nostr_assets.demo.run import main

sys.exit(main())
