"""``python -m bot`` is the same as the ``safebot`` command."""
from bot.cli import main

raise SystemExit(main())
