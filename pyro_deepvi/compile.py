"""A compiled training loss: the objective traced once per batch shape, as Pyro's ``JitTrace_ELBO``.

``CompiledLoss(components, label)`` replaces ``Components.forward`` (``--compile``).
For each batch shape (the full minibatch, the last smaller one, a rank's shard)
it records the whole loss (guide trace, replayed model, log-densities, the
estimator and the plug-in terms) once with ``torch.jit.trace``, a function of
the parameters, the batch tensors and the terms' weights. The weights are an
input, so a schedule such as ``linear:0:1:2`` keeps changing; random draws are
ops of the graph, so a compiled step draws what the eager one would. Returns
the loss and sets ``objective.parts`` as the eager step does; a non-finite loss
is handed to the eager objective, whose guard names the site.

A trace freezes Python control flow. A trace is used only after it gave the
eager loss and parts on the same draws on its first two minibatches (a branch
on the data, or a value read from a tensor as a Python number, shows as a
difference); otherwise, or where tracing fails, or where the guide has
non-reparameterized sites (score-function gradients), the step stays eager,
with a warning that names the model, guide, objective and terms and the cause.
The checks run under ``torch.random.fork_rng``: training draws the same random
numbers compiled or not, so resuming stays exact.

The trace is specialized to its batch shape (shape arithmetic folded into
constants), and runs op by op (``torch.jit.optimized_execution(False)``), with
autograd's own derivatives: the JIT's optimizing executor would swap in its
symbolic derivatives after a few profiling runs, which change the last bits
of the gradients (and so would make a resumed run differ from an uninterrupted
one) and were no faster here. What the trace saves is Python: Pyro's handlers,
traces and distributions' bookkeeping run once, not every step.
"""

import warnings

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites
from torch import nn

from .importance import non_reparameterized_sites
from .objectives.objective import NonFiniteLossError

#: Minibatches on which each trace must give the eager loss before it is trusted.
CHECKED_CALLS = 2


class _TracedLoss(nn.Module):
    """``(weights, *batch tensors) -> (loss, *parts)``: the function that is traced."""

    def __init__(self, components, keys, terms):
        super().__init__()
        self.components = components
        self.keys, self.terms = keys, terms

    def forward(self, weights, *tensors):
        components = self.components
        loss, parts, _ = components.objective.loss_and_parts(
            components.model.model, components.guide, dict(zip(self.terms, weights.unbind(0))), (),
            dict(zip(self.keys, tensors)),
        )
        self.part_names = tuple(parts)
        return (loss, *parts.values())


def _specialize_shapes(graph):
    """Replace the graph's shape arithmetic by constants: a trace serves one batch shape only.

    A trace records ``x.shape[i]`` as ``aten::size`` and the arithmetic on it (about half of
    the nodes of a DLGM's loss); each would be interpreted again every step. The submodules'
    calls are inlined first, so theirs go too."""
    torch._C._jit_pass_inline(graph)
    for node in list(graph.nodes()):
        if node.kind() != "aten::size":
            continue
        tensor, *dim = node.inputs()
        sizes = tensor.type().sizes() if isinstance(tensor.type(), torch._C.TensorType) else None
        if sizes is None or None in sizes or (dim and dim[0].toIValue() is None):
            continue
        with graph.insert_point_guard(node):
            constant = graph.insertConstant(sizes[dim[0].toIValue()] if dim else sizes)
        node.output().replaceAllUsesWith(constant)
        node.destroy()
    torch._C._jit_pass_constant_propagation(graph)
    for node in list(graph.nodes()):  # int(tensor(k)) -> k, which constant propagation leaves
        source = next(node.inputs()).node() if node.kind() == "aten::Int" else None
        if source is not None and source.kind() == "prim::NumToTensor":
            number = next(source.inputs()).toIValue()
            if number is not None:
                with graph.insert_point_guard(node):
                    node.output().replaceAllUsesWith(graph.insertConstant(number))
                node.destroy()
    torch._C._jit_pass_dce(graph)


class CompiledLoss:
    """The loss of ``components`` (a :class:`~pyro_deepvi.engine.Components`), traced per batch shape.

    ``label`` names the run's model, guide, objective and terms in the warning of a fallback.
    """

    def __init__(self, components, label):
        self.components = components
        self.label = label
        self.traced = {}  # batch signature -> [traced loss, part names, calls checked, TracerWarnings]
        self.fallback = None  # the reason the step runs eagerly, once it does

    def __call__(self, batch):
        components = self.components
        if self.fallback is not None:
            return components.eager_forward(batch)
        objective = components.objective
        keys = tuple(batch)
        tensors = tuple(batch.values())
        weights = torch.tensor([objective.weights[name] for name in objective.terms], device=tensors[0].device)
        signature = (tuple(objective.terms), *((key, tuple(t.shape), t.dtype) for key, t in batch.items()))
        if signature not in self.traced:
            self.traced[signature] = self._trace(keys, weights, tensors)
        entry = self.traced[signature]
        if entry is not None and entry[2] < CHECKED_CALLS:
            entry = self._check(signature, entry, weights, tensors, batch)
        if entry is None:
            return components.eager_forward(batch)
        with torch.jit.optimized_execution(False):
            loss, *parts = entry[0](weights, *tensors)
        if not torch.isfinite(loss):
            components.eager_forward(batch)  # raises NonFiniteLossError naming the site, if the draw repeats
            raise NonFiniteLossError(f"loss is {loss.item()} in the compiled step (the eager rerun was finite)")
        objective.parts = dict(zip(entry[1], parts))
        return loss

    def _fall_back(self, reason):
        self.fallback = reason
        self.traced.clear()
        warnings.warn(f"--compile: {self.label} runs eagerly: {reason}", stacklevel=3)

    def _devices(self, tensors):
        return [t.device for t in tensors if t.device.type == "cuda"][:1]

    def _trace(self, keys, weights, tensors):
        components = self.components
        batch = dict(zip(keys, tensors))
        with torch.random.fork_rng(devices=self._devices(tensors)), pyro.validation_enabled(False):
            guide_trace = poutine.trace(components.guide).get_trace(**batch)
            discrete = non_reparameterized_sites(prune_subsample_sites(guide_trace))
            if discrete:
                self._fall_back(
                    f"the guide's site(s) {', '.join(map(repr, discrete))} are not reparameterized "
                    "(score-function gradients read values as Python numbers, which a trace freezes)"
                )
                return None
            module = _TracedLoss(components, keys, tuple(components.objective.terms))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    with torch.jit.optimized_execution(False):
                        traced = torch.jit.trace(module, (weights, *tensors), check_trace=False)
                    _specialize_shapes(traced.graph)
                except Exception as e:  # any failure to trace leaves the step eager, with the cause
                    self._fall_back(f"tracing failed: {type(e).__name__}: {str(e).splitlines()[0]}")
                    return None
        libraries = ("/torch/", "/pyro/")  # their TracerWarnings are shape checks, which a trace per shape may freeze
        tracer_warnings = [
            f"{w.filename}:{w.lineno}: {str(w.message).splitlines()[0][:80]}"
            for w in caught
            if issubclass(w.category, torch.jit.TracerWarning)
            and not any(lib in w.filename.replace("\\", "/") for lib in libraries)
        ]
        return [traced, module.part_names, 0, tracer_warnings]

    def _check(self, signature, entry, weights, tensors, batch):
        """The traced and the eager loss and parts on the same draws; the entry, or None after a fallback."""
        components = self.components
        with torch.random.fork_rng(devices=self._devices(tensors)), pyro.validation_enabled(False):
            seed = int(torch.randint(2**31, ()))
            torch.manual_seed(seed)
            with torch.jit.optimized_execution(False):
                traced = entry[0](weights, *tensors)
            torch.manual_seed(seed)
            loss, parts, _ = components.objective.loss_and_parts(
                components.model.model, components.guide, components.objective.weights, (), batch
            )
        eager = (loss, *parts.values())
        differ = [
            name for name, a, b in zip(("loss", *parts), traced, eager)
            if not torch.allclose(a.detach(), b.detach(), rtol=1e-4, atol=1e-4, equal_nan=True)
        ]
        if differ or len(traced) != len(eager):
            where = "; TracerWarnings at " + "; ".join(entry[3][:3]) if entry[3] else ""
            self._fall_back(
                f"the traced loss differs from the eager one on minibatch {entry[2] + 1} of shape "
                f"{dict((k, s) for k, s, _ in signature[1:])} ({', '.join(differ) or 'number of parts'}): control flow "
                f"or Python numbers that depend on the data or parameters{where}"
            )
            return None
        entry[2] += 1
        return entry
