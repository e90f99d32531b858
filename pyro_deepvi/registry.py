"""Named registries of models, guides, objectives and data sets.

Every component the command line can name lives in a :class:`Registry`; a
new model written as a Pyro program becomes available to ``pyro-deepvi train``
by registering it::

    @MODELS.register("my_vae", "a one-line summary")
    class MyVAE(PyroModule): ...
"""

import inspect


class Registry:
    """A mapping from names to builders, with a one-line summary for each."""

    def __init__(self, kind):
        self.kind = kind
        self._builders = {}
        self._summaries = {}

    def register(self, name, summary=""):
        def decorator(builder):
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._builders[name] = builder
            self._summaries[name] = summary or (builder.__doc__ or "").strip().split("\n")[0]
            return builder

        return decorator

    def get(self, name):
        try:
            return self._builders[name]
        except KeyError:
            choices = ", ".join(sorted(self._builders)) or "none registered"
            raise KeyError(f"unknown {self.kind} {name!r}; choose one of: {choices}") from None

    def summary(self, name):
        self.get(name)
        return self._summaries[name]

    def __contains__(self, name):
        return name in self._builders

    def __iter__(self):
        return iter(sorted(self._builders))


def call_with_options(builder, what, *args, **options):
    """``builder(*args, **options)``, with an option it does not take named as a ValueError.

    ``builder`` is a component's ``from_data``/``from_model``; options it passes on
    through ``**options`` go to its class's ``__init__``, whose names count too.
    """
    try:
        return builder(*args, **options)
    except TypeError as e:
        unknown = [k for k in options if "unexpected keyword argument" in str(e) and repr(k) in str(e)]
        if not unknown:
            raise
        raise ValueError(f"{what} has no option {unknown[0]!r}; its options: {', '.join(_option_names(builder))}") from None


def _option_names(builder):
    names, functions = [], [builder]
    while functions:
        parameters = inspect.signature(functions.pop()).parameters.values()
        for p in list(parameters)[1:]:  # after the data or model it is built from
            if p.kind == p.VAR_KEYWORD and hasattr(builder, "__self__"):
                functions.append(builder.__self__.__init__)
            elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty and p.name not in names:
                names.append(p.name)
    return names


MODELS = Registry("model")
GUIDES = Registry("guide")
OBJECTIVES = Registry("objective")
TERMS = Registry("term")
DATASETS = Registry("data set")
