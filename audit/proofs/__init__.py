"""Pure building blocks of the audit log's proofs: Merkle trees, signed notes, checkpoints, signing keys.

No module here imports Django, the database or any app, and only the standard library and `cryptography`
from outside it, so the offline verifier (`bin/contractor-verify`) runs the very same code as the server.
"""
