"""``python -m chat_gateway`` is ``chat-gateway``."""

import sys

from chat_gateway.cli import main

sys.exit(main())
