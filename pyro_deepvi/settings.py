"""Pyro's ``module_local_params`` setting, on for the library's own runs and only there.

The engine builds, trains and evaluates its models with
``pyro.settings.set(module_local_params=True)``: the parameters of a PyroModule
live in the module, not in Pyro's global param store, so two runs in one
process (a comparison, two loaded runs) never share a parameter name.
``import pyro_deepvi`` leaves the setting alone, so a user's own Pyro code, and
a plain ``SVI(model.model, guide, pyro.optim.Adam(...), Trace_ELBO())`` loop
over the library's models and guides, see Pyro's default.

Pyro reads the setting when a PyroModule is built and again when it is called:
a module built inside :func:`module_local_params` is called inside it too.
"""

import pyro


def module_local_params():
    """A context manager (and decorator) that turns Pyro's ``module_local_params`` on and restores it."""
    return pyro.settings.context(module_local_params=True)
