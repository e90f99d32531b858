"""Named registries of models, guides, objectives and data sets.

Every component the command line can name lives in a :class:`Registry`; a
new model written as a Pyro program becomes available to ``pyro-deepvi train``
by registering it::

    @MODELS.register("my_vae", "a one-line summary")
    class MyVAE(PyroModule): ...
"""


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


MODELS = Registry("model")
GUIDES = Registry("guide")
OBJECTIVES = Registry("objective")
TERMS = Registry("term")
DATASETS = Registry("data set")
