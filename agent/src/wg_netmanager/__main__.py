"""`python -m wg_netmanager`: the same as the wg_netmanager command."""

from .cli import main

raise SystemExit(main())
