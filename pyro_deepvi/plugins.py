"""Plug-ins: a user's models, guides, objectives, terms and data sets, in the user's own modules.

A plug-in module registers its components when imported, as the built-in ones do::

    # my_models.py
    from pyro_deepvi import MODELS

    @MODELS.register("mog_vae", "a VAE with a mixture-of-Gaussians prior")
    class MixtureVAE(PyroModule): ...

The command line imports it with ``--import my_models`` (a module on the Python
path or in the current directory) or ``--import path/to/my_models.py``, and
``config.json`` records the import, so ``pyro-deepvi eval`` and
:func:`~pyro_deepvi.load_run` find the components from the run directory alone.
An installed package makes its modules load by themselves with an entry point in
the group ``pyro_deepvi.plugins``::

    [options.entry_points]
    pyro_deepvi.plugins =
        my_models = my_package.my_models

An entry point that names a function (``my_package.my_models:register``) is called
after its module is imported.
"""

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

GROUP = "pyro_deepvi.plugins"

_loaded_entry_points = set()


def _import_file(path):
    path = Path(path).resolve()
    if not path.is_file():
        raise ImportError(f"plug-in file {str(path)!r} does not exist")
    name = f"pyro_deepvi_plugin_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return str(path)


def _import_module(name):
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())  # a module beside the user, as `python -m` would find it
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is not None and name.split(".")[0] != e.name.split(".")[0]:
            raise ImportError(f"plug-in module {name!r} could not be imported: it needs {e.name!r}, which is missing") from e
        raise ImportError(
            f"plug-in module {name!r} was not found (looked in the current directory and on the Python path); "
            "give a module name or the path of a .py file"
        ) from e
    return name


def import_plugin(name):
    """Import one plug-in (a module name, or the path of a ``.py`` file); returns how to import it again.

    A file is returned as its absolute path, so a run directory records where it lives.
    """
    if not isinstance(name, str) or not name:
        raise ImportError(f"a plug-in is a module name or the path of a .py file, got {name!r}")
    if name.endswith(".py") or os.sep in name:
        return _import_file(name)
    return _import_module(name)


def load_entry_points():
    """Import every installed package's plug-ins (the ``pyro_deepvi.plugins`` entry points), once each."""
    for entry_point in importlib.metadata.entry_points(group=GROUP):
        if entry_point.value in _loaded_entry_points:
            continue
        try:
            loaded = entry_point.load()
        except Exception as e:
            raise ImportError(f"the {GROUP} entry point {entry_point.name!r} ({entry_point.value}) failed to load: {e}") from e
        if callable(loaded):
            loaded()
        _loaded_entry_points.add(entry_point.value)


def import_plugins(names=()):
    """The installed entry-point plug-ins, then ``names`` in order; returns the names as a run records them."""
    load_entry_points()
    return tuple(import_plugin(name) for name in names)
