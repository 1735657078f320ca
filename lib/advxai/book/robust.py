"""The Robust models chapter, from the result table: RobustBench's leaderboard rows, each adversarially trained model
beside its standard twin (same dataset and architecture, ``cnn-at2`` beside ``cnn``), the alignment of input
gradients with the image, how far Grad-CAM moves under attack for each, and the facts the chapter's sentences carry
(:func:`facts`; the sentences are in ``book/robustness.md``). Comparisons use the intervals (:func:`compare`)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .grammar import closed
from .robustplots import k255, robustbench_md
from .style import NO_FIGURE, NOT_RUN, collapsed, compare, fmt, fmt_n, has_ci, md_table

ENSEMBLE = "autoattack-nofab"
_AT = re.compile(r"^(?P<arch>.+)-at(?P<eps>[\d.]+)$")


def standard_of(model: str) -> str | None:
    """The standard twin of an adversarially trained model's label (``cnn-at2`` -> ``cnn``), else None."""
    m = _AT.match(str(model))
    return m["arch"] if m else None


def _span(values, spec: str) -> str:
    lo, hi = format(min(values), spec), format(max(values), spec)
    return lo if lo == hi else f"{lo}–{hi}"


def pairs(df: pd.DataFrame) -> pd.DataFrame:
    """Each adversarially trained model beside its standard twin under the ensemble at each ε: one row per
    (dataset, AT model, ε) with both rows and how the AT one compares."""
    rb = df[(df.stage == "robust") & (df.metric == "robust_accuracy") & (df.attack == ENSEMBLE)]
    out = []
    for (d, m), g in rb.groupby(["dataset", "model"]):
        std = standard_of(m)
        if std is None:
            continue
        twin = rb[(rb.dataset == d) & (rb.model == std)].set_index("eps")
        for r in g.itertuples():
            if r.eps in twin.index:
                s = twin.loc[r.eps]
                out.append({"dataset": d, "model": m, "standard": std, "eps": r.eps, "at": r, "std": s,
                            "word": compare(r, s)})
    return pd.DataFrame(out)


def _test_accuracy(df: pd.DataFrame, d: str, m: str):
    t = df[(df.stage == "train") & (df.dataset == d) & (df.model == m) & (df.metric == "accuracy")
           & (df.subset == "test")]
    return t.iloc[0] if len(t) else None


def pairs_table(df: pd.DataFrame) -> str:
    """Standard vs adversarially trained, a row per (dataset, architecture, ε): robust accuracy under the ensemble
    of both, the word their intervals decide and the test accuracy each pays; collapsed."""
    p = pairs(df)
    if p.empty:
        return ""
    rows = []
    for r in p.itertuples():
        a, s = _test_accuracy(df, r.dataset, r.model), _test_accuracy(df, r.dataset, r.standard)
        rows.append({"dataset": r.dataset, "models": f"{r.model} vs {r.standard}", "ε": k255(r.eps),
                     "robust accuracy, AT": fmt(r.at), "robust accuracy, standard": fmt(r.std),
                     "AT vs standard": r.word,
                     "test accuracy, AT / standard": f"{fmt(a) if a is not None else '—'} / "
                                                     f"{fmt(s) if s is not None else '—'}"})
    return collapsed(f"standard vs adversarially trained, {len(rows)} row{'s' * (len(rows) > 1)}", md_table(rows))


def alignment_table(df: pd.DataFrame) -> str:
    """The alignment |⟨∇ₓ z_y, x⟩| / (‖∇ₓ z_y‖ ‖x‖) per model, and how each AT model's compares with its twin's."""
    al = df[(df.stage == "robust") & (df.metric == "gradient_alignment")]
    if al.empty:
        return NOT_RUN
    rows = []
    for r in al.itertuples():
        std = standard_of(r.model)
        twin = al[(al.dataset == r.dataset) & (al.model == std)] if std else al.iloc[:0]
        rows.append({"dataset": r.dataset, "model": r.model, "alignment": fmt_n(r, 3),
                     "vs its standard twin": f"{compare(r, twin.iloc[0])} {std}" if len(twin) else "—"})
    return collapsed(f"alignment of the input gradient with the image, {len(rows)} models", md_table(rows))


def _tally(p: pd.DataFrame) -> dict[str, int]:
    """How many comparisons came out higher and lower, intervals apart."""
    return {w: int((p.word == w).sum()) for w in ("higher than", "lower than")}


def shift(df: pd.DataFrame, metric: str = "iou") -> pd.DataFrame:
    """Each adversarially trained model's Grad-CAM shift beside its standard twin's, under the same attack and ε on
    the same subset (fooled / not fooled): one row per (dataset, AT model, attack, ε, subset) with both rows."""
    sh = df[(df.stage == "robust") & (df.metric == metric) & df.subset.isin(["fooled", "not_fooled"])]
    out = []
    for r in sh[sh.model.map(standard_of).notna()].itertuples():
        twin = sh[(sh.dataset == r.dataset) & (sh.model == standard_of(r.model)) & (sh.attack == r.attack)
                  & (sh.eps == r.eps) & (sh.subset == r.subset)]
        if len(twin):
            out.append({"dataset": r.dataset, "model": r.model, "standard": standard_of(r.model), "attack": r.attack,
                        "eps": r.eps, "subset": r.subset, "at": r, "std": twin.iloc[0],
                        "word": compare(r, twin.iloc[0])})
    return pd.DataFrame(out)


def shift_table(df: pd.DataFrame) -> str:
    """The IoU of the top-10 % Grad-CAM pixels between the clean and the attacked map, AT vs standard, a row per
    (dataset, models, attack, ε, subset); collapsed."""
    p = shift(df)
    if p.empty:
        return ""
    p = p.sort_values(["dataset", "model", "attack", "eps", "subset"])
    rows = [{"dataset": r.dataset, "models": f"{r.model} vs {r.standard}", "attack": r.attack, "ε": k255(r.eps),
             "subset": r.subset.replace("_", " "), "IoU, AT": fmt(r.at), "IoU, standard": fmt(r.std),
             "AT vs standard": r.word} for r in p.itertuples()]
    return collapsed(f"Grad-CAM IoU, clean vs attacked, AT vs standard, {len(rows)} rows", md_table(rows))


def detection(df: pd.DataFrame) -> pd.DataFrame:
    """Each detector's worst held-out AUROC on each adversarially trained model beside the same detector on its
    standard twin (same dataset, the config's seed): one row per (dataset, AT model, detector)."""
    from .aggregate import detection_settings

    s = detection_settings(df, standard=False)
    if s.empty:
        return s
    twin = s.set_index(["dataset", "model", "detector"])
    out = []
    for r in s[s.model.map(standard_of).notna()].itertuples():
        key = (r.dataset, standard_of(r.model), r.detector)
        if key in twin.index:
            t = twin.loc[key]
            at = pd.Series({"value": r.auroc, "ci_low": r.ci_low, "ci_high": r.ci_high})
            std = pd.Series({"value": t.auroc, "ci_low": t.ci_low, "ci_high": t.ci_high})
            out.append({"dataset": r.dataset, "model": r.model, "standard": key[1], "detector": r.detector,
                        "group": r.group, "at": at, "std": std, "word": compare(at, std)})
    return pd.DataFrame(out)


def _auroc(r) -> str:
    return fmt(r) if has_ci(r) else ("—" if pd.isna(r.value) else f"{r.value:.2f} (no interval)")


def detection_table(df: pd.DataFrame) -> str:
    """Per (AT model, detector) its worst held-out AUROC beside the same detector on the standard twin; collapsed."""
    p = detection(df)
    if p.empty:
        return ""
    rows = [{"dataset": r.dataset, "models": f"{r.model} vs {r.standard}", "detector": r.detector, "group": r.group,
             "worst held-out AUROC, AT": _auroc(r.at), "standard": _auroc(r.std), "AT vs standard": r.word}
            for r in p.sort_values(["dataset", "model", "group", "detector"]).itertuples()]
    return collapsed(f"worst held-out AUROC, AT vs standard, {len(rows)} rows", md_table(rows))


def facts(df: pd.DataFrame, robust_dirs: list = (), defaults: dict | None = None) -> dict[str, str]:
    """The chapter's facts by glue name (``rb-*``; the sentences are in ``book/robustness.md``): what the ensemble
    leaves at the largest ε on the standard models, how often it is at least as strong as PGD, and — each counted
    over the (model, ε) or (model, attack, ε, subset) or (model, detector) comparisons, intervals apart — where
    adversarial training kept more images correct, kept more of the clean Grad-CAM map, and changed detection; and
    the attack budgets the runs recorded (``rb-budgets``, :func:`budgets`)."""
    from .abstract import NOT_IN_BUILD, count_of

    out: dict[str, str] = {}
    rb = df[(df.stage == "robust") & (df.metric == "robust_accuracy")]
    ens = rb[rb.attack == ENSEMBLE]
    std = ens[ens.model.map(standard_of).isna()]
    if len(std):
        top = std[std.eps == std.eps.max()]
        out.update({"rb-eps": k255(top.eps.iloc[0]), "rb-left": _span(100 * top.value, ".0f") + " %",
                    "rb-std-models": f"{len(top)} standard model{'s' * (len(top) > 1)}", "rb-n": _span(top.n, ".0f")})
    both = ens.set_index(["dataset", "model", "eps"]).join(rb[rb.attack == "pgd"].set_index(["dataset", "model",
                                                                                                "eps"]),
                                                         rsuffix="_pgd", how="inner")
    if len(both):
        out.update({"rb-vs-pgd": count_of(int((both.value <= both.value_pgd).sum()), len(both), "(model, ε) cell"),
                    "rb-vs-pgd-below": str(int((both.ci_high < both.ci_low_pgd).sum()))})
    p = pairs(df)
    if len(p):
        out["rb-at-higher"] = count_of(_tally(p)["higher than"], len(p), "(model, ε) cell")
    sh = shift(df)
    if len(sh):
        t = _tally(sh)
        out.update({"rb-shift-more": count_of(t["higher than"], len(sh), "(model, attack, ε, subset) cell"),
                    "rb-shift-less": str(t["lower than"])})
    dp = detection(df)
    if len(dp):
        det = df[(df.stage == "detection") & (df.metric == "n_adversarial") & df.model.isin(set(dp.model))]
        t = _tally(dp)
        out.update({"rb-det-higher": count_of(t["higher than"], len(dp), "(model, detector) pair"),
                    "rb-det-lower": str(t["lower than"]),
                    "rb-det-counts": "; ".join(f"{m} on {d}: {int(g.value.min())}–{int(g.value.max())} of "
                                               f"{int(g.n.max())}" for (d, m), g in det.groupby(["dataset", "model"]))})
    keys = ("rb-eps", "rb-left", "rb-std-models", "rb-n", "rb-vs-pgd", "rb-vs-pgd-below", "rb-at-higher",
            "rb-shift-more", "rb-shift-less", "rb-det-higher", "rb-det-lower", "rb-det-counts")
    return {**{k: out.get(k, NOT_IN_BUILD) for k in keys}, "rb-budgets": budgets(list(robust_dirs), defaults or {})}


def saliency_figure(robust_dirs: list):
    """The input-gradient maps of every model of one dataset side by side on the same seeded test images (the
    dataset with the most models, adversarially trained ones included), or a sentence where no run saved them."""
    import json

    from IPython.display import HTML

    from .. import artefacts
    from .robustplots import saliency_grid

    by_dataset: dict[str, dict] = {}
    for d in map(Path, robust_dirs):
        if (d / "saliency.npz").exists() and (d / "provenance.json").exists():
            p = json.loads((d / "provenance.json").read_text())["parameters"]
            maps = artefacts.load_npz(d / "saliency.npz")
            by_dataset.setdefault(f"{p['dataset']}_{p['size']}", {})[p["model"]] = maps
    if not by_dataset:
        return HTML("<p><em>No robustness run in this build: no saliency maps to show.</em></p>")
    name, samples = max(by_dataset.items(), key=lambda kv: len(kv[1]))
    fig = saliency_grid(dict(sorted(samples.items())))
    fig.suptitle(name, y=1.01)
    return fig


def budgets(robust_dirs: list, defaults: dict) -> str:
    """The attack budgets this build's robustness runs used, read from their recorded parameters (a config may lower
    them), each marked where it differs from the robustness stage's default (``defaults``: attack -> parameters, the
    runner's; e.g. PGD-50 with five restarts, where the attack registry's PGD has one start)."""
    import json

    from ..attacks import params_for

    used: dict[str, set] = {}
    for d in map(Path, robust_dirs):
        p = json.loads((d / "provenance.json").read_text())["parameters"]
        for name, overrides in p.get("attack_params", {}).items():
            full = params_for(name, overrides)
            default = params_for(name, defaults.get(name, {}))
            used.setdefault(name, set()).update(
                f"{k}: {v}" + ("" if v == default[k] else f" (default {default[k]})")
                for k, v in full.items() if k in ("apgd_iter", "n_targets", "square_iter", "max_iter",
                                                   "num_random_init"))
    if not used:
        from .abstract import NOT_IN_BUILD

        return NOT_IN_BUILD
    return "; ".join(f"{name} with {', '.join(sorted(v))}" for name, v in sorted(used.items()))


def glue_items(df: pd.DataFrame, robust_dirs: list) -> dict:
    """The chapter's pasted parts besides its facts (:func:`facts`), by glue name: RobustBench rows, the tables behind
    the sentences, the budgets, figures."""
    from .robustplots import robust_accuracy
    from .style import html

    fig = robust_accuracy(df)
    return {"rb-table-md": html(robustbench_md(df)), "rb-pairs-table": html(pairs_table(df)),
            "rb-align-table": html(alignment_table(df)), "rb-shift-table": html(shift_table(df)),
            "rb-detection-table": html(detection_table(df)),
            "rb-fig": closed(fig) if fig is not None else html(NO_FIGURE),
            "rb-saliency-fig": closed(saliency_figure(robust_dirs))}
