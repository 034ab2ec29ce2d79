"""``python -m registry``: the repository's tooling command line."""

from registry.cli import main

raise SystemExit(main())
