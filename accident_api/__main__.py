"""`python -m accident_api` runs the `accident-api` command."""
import sys

from accident_api.cli import main

sys.exit(main())
