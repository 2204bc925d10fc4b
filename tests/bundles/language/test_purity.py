"""The bundle language is pure: the CLI imports it without Django, so no module of it may need Django."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# Make `django` unimportable, then import every module of the package.
IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys

class NoDjango:
    def find_spec(self, name, path=None, target=None):
        if name == "django" or name.startswith("django."):
            raise ImportError("django is not available to the bundle language")
        return None

sys.meta_path.insert(0, NoDjango())
import bundles.language as package
names = [info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
for name in names:
    importlib.import_module(name)
assert not any(module == "django" or module.startswith("django.") for module in sys.modules)
print(len(names))
"""


def test_every_module_of_the_language_imports_without_django():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 20  # every module was found and imported
