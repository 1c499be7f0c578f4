"""`python -m tapkit ...` is the same as the `tapkit` console command."""

from .cli import main

raise SystemExit(main())
