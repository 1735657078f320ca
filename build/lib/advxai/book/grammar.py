"""The book's figure grammar, one place every figure draws from: one colour per attack in every figure; a second,
distinct palette for what a detector reads (its group), named in each legend and never reused for a rank; rates
and overlaps on axes from 0 with their chance or reference line; a perceptual colour map with a colour bar for
saliency maps; ε as a fraction of 255; at most four panels per row.

A leaf of the book layer (no import of the other book modules), so any figure module may use it."""

from __future__ import annotations

# Attacks: the colour-blind palette's first seven colours, in this fixed order, whatever subset a figure holds.
ATTACK_ORDER = ["fgsm", "bim", "pgd", "deepfool", "cw", "uap", "square"]
# Minimal-perturbation attacks search for the smallest change that flips the label: they have no ε budget, so a
# figure draws them against the perturbation they reached, never on an ε axis.
MINIMAL = {"deepfool", "cw", "cw-art"}

# Detector groups: black for the group the book's question is about, and three colours the attack palette does
# not use (the colour-blind palette's sky blue, grey and a dark yellow), so "orange" never means two things.
GROUP_COLOURS = {"explanation maps": "#000000", "outputs": "#56B4E9", "deep features": "#949494",
                 "combinations": "#B8A000", "other": "#DDDDDD"}

MAP_CMAP = "magma"  # perceptual, legible in greyscale; drawn with a colour bar
MAX_PER_ROW = 4
CHANCE_STYLE = {"color": "black", "ls": ":", "lw": 1}
GOAL_STYLE = {"color": "#555555", "ls": "--", "lw": 1}  # a target line (the detection goal): no attack's colour
CLEAN_COLOUR, ADVERSARIAL_COLOUR = "#949494", "#000000"  # score distributions: clean vs adversarial images


def attack_name(attack) -> str:
    """An attack's name without its ε units (``pgd@sigma`` -> ``pgd``): what its legend entry says."""
    return str(attack).split("@")[0]


def attack_colours(attacks) -> dict[str, tuple]:
    """Attack -> its colour (the colour-blind palette, in the fixed order of :data:`ATTACK_ORDER`; an attack in σ
    units, ``pgd@sigma``, shares its attack's colour, others follow in name order)."""
    import seaborn as sns

    extra = sorted({attack_name(a) for a in attacks} - set(ATTACK_ORDER))
    names = ATTACK_ORDER + extra
    # the colour-blind palette's first seven, then pastel shades: never the grey, sky blue or yellow of the groups
    colours = sns.color_palette("colorblind", len(ATTACK_ORDER)) + sns.color_palette("pastel", 10)[:len(extra)]
    palette = dict(zip(names, colours, strict=True))
    ordered = sorted(set(attacks), key=lambda a: (names.index(attack_name(a)), str(a)))
    return {a: palette[attack_name(a)] for a in ordered}


def group_colour(group: str) -> str:
    return GROUP_COLOURS.get(group, GROUP_COLOURS["other"])


def per_255(eps: float) -> str:
    """ε as the field writes it: ``8/255`` where it is one, else ``0.1`` with its nearest /255 (``≈26/255``)."""
    k = eps * 255
    if abs(k - round(k)) < 1e-6 and round(k) > 0:
        return f"{round(k)}/255"
    return f"{eps:g} (≈{k:.0f}/255)" if eps else "0"


def rate_axis(ax, label: str, reference: float | None = None, reference_label: str = "chance",
              axis: str = "y") -> None:
    """A rate or overlap axis from 0 to 1 with its reference line (chance, unrelated maps) where one exists."""
    if axis == "y":
        ax.set_ylim(0, 1.02)
        ax.set_ylabel(label)
        if reference is not None:
            ax.axhline(reference, **CHANCE_STYLE, label=reference_label)
    else:
        ax.set_xlim(0, 1.02)
        ax.set_xlabel(label)
        if reference is not None:
            ax.axvline(reference, **CHANCE_STYLE, label=reference_label)


def eps_ticks(ax, eps, axis: str = "x") -> None:
    """ε tick labels in /255 (:func:`per_255`, shortened to ``k/255``)."""
    eps = sorted(set(float(e) for e in eps))
    labels = [per_255(e).split(" (")[-1].rstrip(")") for e in eps]  # 8/255, or ≈13/255
    (ax.set_xticks if axis == "x" else ax.set_yticks)(eps, labels)


def shape(n: int) -> tuple[int, int]:
    """Rows and columns for ``n`` panels, at most :data:`MAX_PER_ROW` per row."""
    cols = min(n, MAX_PER_ROW)
    return -(-n // cols), cols


def closed(shown):
    """A figure closed in pyplot (anything else as it is): glue shows it once, and a later ``plt.show()`` of the
    same notebook does not show it a second time."""
    from matplotlib.figure import Figure

    if isinstance(shown, Figure):
        import matplotlib.pyplot as plt

        plt.close(shown)
    return shown
