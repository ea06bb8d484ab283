"""Import a file of ``scripts/`` as a module: the scripts are not a package."""

import importlib.util
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_script(filename):
    """A fresh module object for ``scripts/<filename>`` (e.g. "demo.py")."""
    path = os.path.join(REPO, "scripts", filename)
    name = "script_" + os.path.splitext(filename)[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
