"""Run the dev model server: ``python -m devmodel --host 127.0.0.1 --port 8002 [--rules FILE]``."""

from devmodel.server import main

raise SystemExit(main())
