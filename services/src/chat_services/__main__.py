"""``python -m chat_services serve``."""

from chat_services.cli import main

raise SystemExit(main())
