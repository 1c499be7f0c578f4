"""`python -m tapkit ...` is the same as the `tapkit` console command."""

from tapkit.cli import main

raise SystemExit(main())
