"""A design name -> the class that builds it, for the design registries of the attention blocks
(``tdrag.models.tdrag.ATTENTIONS``) and the temporal head (``tdrag.models.tdrag.HEADS``).

A registry maps names to classes, the chosen design first; every other entry subclasses it and
changes one thing (one method or class attribute). A config names one entry (``"softmax"``) or
joins several with "+" (``"softmax+pooling"``): the class is then the subclasses combined, which
works because each overrides something the others leave alone. Two that override the same thing
(two readouts) cannot be combined, and saying so is this module's job too.

A new design: one subclass, one entry in its registry, its name in ``tdrag.config.CHOICES``.
"""

from __future__ import annotations

#: What a design class may define without clashing with another one: the cooperative methods
#: (each calls ``super()``) and what Python writes into every class.
_SHARED = frozenset({"__init__", "reset_parameters", "__module__", "__qualname__", "__doc__", "__firstlineno__",
                     "__static_attributes__", "__annotations__"})


def design_class(registry: dict[str, type], design: str, key: str = "design") -> type:
    """The class of ``design`` (registry names joined with "+") in ``registry``.

    Args:
        registry: names -> classes, the chosen design first and the others its subclasses.
        design: e.g. ``"residual"``, ``"softmax"`` or ``"softmax+pooling"``.
        key: the config key the design came from, for error messages.

    Raises:
        ValueError: an unknown name, or two designs that change the same thing.
    """
    chosen = next(iter(registry.values()))
    parts = design.split("+")
    unknown = [p for p in parts if p not in registry]
    if unknown:
        raise ValueError(f"{key}: {unknown[0]!r} is not one of {', '.join(registry)}")
    changes = [registry[p] for p in dict.fromkeys(parts) if registry[p] is not chosen]
    if not changes:
        return chosen
    if len(changes) == 1:
        return changes[0]
    for i, a in enumerate(changes):
        for b in changes[i + 1:]:
            clash = (set(vars(a)) & set(vars(b))) - _SHARED
            if clash:
                raise ValueError(f"{key}: {design!r} combines two designs that both change {sorted(clash)[0]}")
    doc = " + ".join((c.__doc__ or c.__name__).split(":")[0] for c in changes)  # '"softmax" + "pooling"'
    return type(design, tuple(changes), {"__doc__": doc})
