"""The contractor command-line client (``python -m cli.contractor`` or ``bin/contractor``)."""
