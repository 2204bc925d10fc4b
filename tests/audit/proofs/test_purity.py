"""audit/proofs is pure: the offline verifier imports it with the standard library and `cryptography` only."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# Make `django` unimportable, import every module of the package, then list what came from outside the
# standard library. `_cffi_backend` and `_openssl` are compiled parts of `cryptography`.
IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys

class NoDjango:
    def find_spec(self, name, path=None, target=None):
        if name == "django" or name.startswith("django."):
            raise ImportError("django is not available to the offline verifier")
        return None

sys.meta_path.insert(0, NoDjango())
before = set(sys.modules)
import audit.proofs as package
names = [info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
for name in names:
    importlib.import_module(name)
outside = {module.split(".")[0] for module in set(sys.modules) - before} - set(sys.stdlib_module_names)
print(len(names), " ".join(sorted(outside)))
"""


def test_every_module_of_the_proofs_package_imports_without_django_or_other_packages():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    count, _, outside = result.stdout.strip().partition(" ")
    assert int(count) >= 4  # merkle, note, checkpoint, keys
    assert set(outside.split()) <= {"audit", "cryptography", "_cffi_backend", "_openssl"}
