"""Sentences from numbers: every comparative word in the book's prose is chosen here from the values and
their 95 % intervals, never typed by hand.

Two numbers are called different only when their intervals do not overlap (a conservative test); otherwise
the sentence says they cannot be told apart. Below ``tables.MIN_N`` images a number has no interval and is
never ranked. The functions return Markdown; :func:`html` turns it into the HTML the book pastes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .detplots import ANCHORS, GOAL, explanation_based, worst_held_out

NOT_RUN = "*Not run in this configuration.*"


def fmt(r, digits: int = 2) -> str:
    """``0.83 [0.74, 0.89]``, or ``0.83 (n = 6: too few images for an interval)``. An interval whose ends round
    to the same number gets more digits (up to four): 0.9997 [0.9990, 1.0000], never a false "[1.00, 1.00]"."""
    if not np.isfinite(r.value):
        return "—"
    if np.isfinite(r.ci_low):
        while digits < 4 and r.ci_low != r.ci_high and f"{r.ci_low:.{digits}f}" == f"{r.ci_high:.{digits}f}":
            digits += 1
        return f"{r.value:.{digits}f} [{r.ci_low:.{digits}f}, {r.ci_high:.{digits}f}]"
    return f"{r.value:.{digits}f} (n = {int(r.n)}: too few images for an interval)"


def fmt_n(r, digits: int = 2) -> str:
    """:func:`fmt` with the image count (which ``fmt`` already gives when there is no interval)."""
    return fmt(r, digits) + (f" (n = {int(r.n)})" if has_ci(r) else "")


def has_ci(r) -> bool:
    return bool(np.isfinite(r.ci_low) and np.isfinite(r.ci_high))


def compare(a, b) -> str:
    """How ``a`` relates to ``b``: "higher than", "lower than", "indistinguishable from" (intervals overlap),
    or "not comparable with" (one of them has too few images for an interval)."""
    if not (has_ci(a) and has_ci(b)):
        return "not comparable with"
    if a.ci_low > b.ci_high:
        return "higher than"
    if a.ci_high < b.ci_low:
        return "lower than"
    return "indistinguishable from"


def top_group(rows: pd.DataFrame, label: str) -> tuple[list[str], list[str]]:
    """Split rows into those indistinguishable from the largest value (intervals overlapping the top row's)
    and the rest, by the ``label`` column. Rows without an interval are left out of both."""
    ok = rows[np.isfinite(rows.ci_low)].sort_values("value", ascending=False)
    if ok.empty:
        return [], []
    best = ok.iloc[0]
    tied = ok[ok.ci_high >= best.ci_low]
    return tied[label].tolist(), ok[~ok.index.isin(tied.index)][label].tolist()


def ranking_sentence(rows: pd.DataFrame, label: str, what: str) -> str:
    """E.g. "Highest fooling rate, with overlapping intervals: pgd and deepfool; lower: fgsm." """
    top, rest = top_group(rows, label)
    unranked = rows[~np.isfinite(rows.ci_low)][label].tolist()
    if len(top) + len(rest) < 2:
        return (f"No ranking of {what}: fewer than two have an interval"
                + (f" ({', '.join(map(str, unranked))}: too few images)." if unranked else "."))
    if len(top) == 1:
        head = f"Highest {what}: {top[0]}, its interval above every other's"
    else:
        head = f"Highest {what}, with overlapping intervals: {', '.join(top[:-1])} and {top[-1]}"
    return head + (f"; lower: {', '.join(rest)}" if rest else "") + (
        f"; not ranked (too few images): {', '.join(map(str, unranked))}." if unranked else ".")


def html(markdown: str):
    """Markdown -> an IPython HTML object (cross-document glue pastes HTML, not Markdown)."""
    from IPython.display import HTML
    from markdown_it import MarkdownIt

    return HTML(MarkdownIt("commonmark").enable("table").render(markdown))


def _pick(df: pd.DataFrame, **sel) -> pd.DataFrame:
    for k, v in sel.items():
        df = df[np.isclose(df[k], v)] if k == "eps" else df[df[k] == v]
    return df


def clean_md(df: pd.DataFrame) -> str:
    """One line per trained (dataset, model): test accuracy, balanced accuracy and AUC with intervals, and each
    bar of :mod:`advxai.models.benchmarks` it is held against, met or not (with the value and the bar)."""
    from ..models import benchmarks

    tr = df[(df.stage == "train") & (df.subset == "test")]
    if tr.empty:
        return NOT_RUN
    lines = []
    for (d, m), g in tr.groupby(["dataset", "model"]):
        v = g.set_index("metric")
        line = (f"- **{d} · {m}** ({int(v.loc['accuracy'].n)} test images): accuracy {fmt(v.loc['accuracy'])}, "
                f"balanced accuracy {fmt(v.loc['balanced_accuracy'])}, AUC {fmt(v.loc['auc'])}")
        rows = df[(df.stage == "train") & (df.dataset == d) & (df.model == m)]
        family, _, size = str(d).rpartition("_")
        bars = benchmarks.check(family or d, int(size) if size.isdigit() else 0, rows, benchmarks.majority(rows))
        if len(bars):
            unmet = bars[bars.met != "yes"]
            every = "its bar" if len(bars) == 1 else f"all {len(bars)} bars"
            line += (f"; meets {every} of `advxai.models.benchmarks`" if unmet.empty else
                     f"; meets {len(bars) - len(unmet)} of {len(bars)} bars, not: " + ", ".join(
                         f"{b.metric} on {b.split} {b.ours:.3f} vs {b.bar:.3f} ({b.met})" for b in unmet.itertuples()))
        lines.append(line + ".")
    return "\n".join(lines)


def fooling_md(df: pd.DataFrame, stage: str = "attack") -> str:
    """Per (dataset, model), at the largest ε of the grid: the fooling rate over the correctly classified
    images and the seeds' flip rate over all attacked images, with the ranking of attacks under each."""
    att = df[(df.stage == stage) & (df.attack != "none")]
    if att.empty:
        return NOT_RUN
    out = []
    for (d, m), g in att.groupby(["dataset", "model"]):
        e = g.eps.max()
        fr = _pick(g, eps=e, metric="fooling_rate", subset="correct")
        fl = _pick(g, eps=e, metric="flip_rate", subset="attacked")
        parts = ", ".join(f"{r.attack} {fmt_n(r)}" for r in fr.itertuples())
        flips = ", ".join(f"{r.attack} {fmt(r)}" for r in fl.itertuples())
        out.append(f"**{d} · {m}, ε = {e:g}.** Fooling rate over the correctly classified images: {parts}. "
                   f"{ranking_sentence(fr, 'attack', 'fooling rate')} Over all attacked images, as the seeds "
                   f"counted (flip rate): {flips}. {ranking_sentence(fl, 'attack', 'flip rate')}")
    return "\n\n".join(out)


def split_md(df: pd.DataFrame, stage: str, metric: str, meaning: str, target: str = "predicted") -> str:
    """Per (dataset, model, explainer), at the largest ε: ``metric`` on fooled vs not-fooled images, and on
    fooled images with the ``clean`` target (both maps explain the clean class) when it was run."""
    s = df[(df.stage == stage) & (df.metric == metric) & (df.attack != "none")]
    if s.empty:
        return NOT_RUN
    blank = df[(df.stage == stage) & (df.metric == "blank_pairs")]
    out = []
    for (d, m, x), g in s.groupby(["dataset", "model", "explainer"]):
        e = g.eps.max()
        lines = []
        for a, ga in _pick(g, eps=e).groupby("attack"):
            f = _pick(ga, target=target, subset="fooled")
            nf = _pick(ga, target=target, subset="not_fooled")
            if f.empty or nf.empty:
                continue
            f, nf = f.iloc[0], nf.iloc[0]
            if f.n == 0 or nf.n == 0:  # nothing to compare with: say why one side is empty
                sides = {"fooled": f, "not_fooled": nf}
                sizes = {sub: _size(blank, r, sub) for sub, r in sides.items()}
                parts = [_side(sub, r, sizes[sub]) for sub, r in sides.items()]
                line = f"{a}: " + ("no correctly classified image" if not any(sizes.values()) else "; ".join(parts))
            else:
                line = f"{a}: fooled {fmt_n(f)} is {compare(f, nf)} not fooled {fmt_n(nf)}"
            cl = _pick(ga, target="clean", subset="fooled")
            if target != "clean" and len(cl):
                line += f"; explaining the clean class on the fooled images: {fmt_n(cl.iloc[0])}"
            lines.append(f"- {line}.")
        if lines:
            out.append(f"**{d} · {m} · {x}, ε = {e:g}** ({meaning}):\n\n" + "\n".join(lines))
    return "\n\n".join(out) if out else NOT_RUN


def _side(subset: str, r, size: int) -> str:
    """One side of a fooled / not-fooled comparison: its number, or why it has none."""
    if r.n:
        return f"{subset.replace('_', ' ')} {fmt_n(r)}"
    if size:
        return f"{subset.replace('_', ' ')}: all {size} pairs had a blank map"
    return "no image was fooled" if subset == "fooled" else "no correctly classified image resisted"


def _size(blank: pd.DataFrame, r, subset: str) -> int:
    """How many images a subset holds, blank pairs included (the metric row's ``n`` leaves them out)."""
    b = blank[(blank.dataset == r.dataset) & (blank.model == r.model) & (blank.explainer == r.explainer)
              & (blank.target == r.target) & (blank.attack == r.attack) & np.isclose(blank.eps, r.eps)
              & (blank.subset == subset)]
    return int(b.n.iloc[0]) if len(b) else int(r.n)


def fitted_on_sentence(g: pd.DataFrame, r) -> str:
    """How much detector ``r``'s held-out number depends on what it was fitted on: its AUROC on the same cell when
    fitted on one cell of another attack at a time (the transfer rows), lowest and highest, against ``r`` (fitted
    on all of them). Empty with fewer than two such fits. A detector fitted on clean images only (or on nothing)
    never sees an attack, so what it was fitted on cannot matter: said so instead."""
    from ..detect.detectors import DETECTORS
    from ..detect.protocol import CLEAN_ONLY_FITS

    if r.explainer in DETECTORS and DETECTORS[r.explainer].fit in CLEAN_ONLY_FITS:
        return (f"{r.explainer} never sees an adversarial image when it is fitted, so its held-out number does not "
                "depend on which attacks the others were fitted on.")
    tr = g[(g.metric == "auroc") & (g.explainer == r.explainer) & (g.attack == r.attack) & np.isclose(g.eps, r.eps)
           & g.target.str.startswith("from ") & ~g.target.str.startswith(f"from {r.attack}@")]
    if len(tr) < 2:
        return ""
    lo, hi = tr.loc[tr.value.idxmin()], tr.loc[tr.value.idxmax()]
    return (f"What it was fitted on matters: fitted on one other attack at a time, {r.explainer}'s AUROC on "
            f"{r.attack} at ε = {r.eps:g} runs from {fmt(lo)} ({lo.target.removeprefix('from ')}) to {fmt(hi)} "
            f"({hi.target.removeprefix('from ')}), against {fmt(r)} fitted on all of them"
            + (" — below chance for one of them, so a ranking of held-out numbers holds for this set of attacks "
               "only." if has_ci(lo) and lo.ci_high < 0.5 else "."))


def detection_md(df: pd.DataFrame) -> str:
    """The detection chapter's sentences, per (dataset, model): the sample, the ranking of detectors by their
    worst held-out AUROC, the goal (explanation detector with held-out AUROC ≥ 0.98 and TPR@5 % FPR ≥ 0.90 on
    every held-out attack, above the best baseline), the adaptive attack and the answer to the book's question."""

    det = df[df.stage == "detection"]
    if det.empty or not (det.target == "held_out").any():
        return NOT_RUN
    out = []
    for (d, m), g in det.groupby(["dataset", "model"]):
        pos = g[g.metric == "n_adversarial"]
        fr = g[(g.metric == "fooling_rate") & (g.target == "none")]
        cells = "; ".join(f"{r.attack} at ε = {r.eps:g}: {int(r.value)} (fooling rate {fmt(f.iloc[0])})"
                          for r in pos.itertuples()
                          for f in [fr[(fr.attack == r.attack) & np.isclose(fr.eps, r.eps)]])
        n_clean = int(pos.n.iloc[0]) if len(pos) else 0
        worst = worst_held_out(g, "auroc").sort_values("value", ascending=False)
        tpr = worst_held_out(g, "tpr_at_5fpr").set_index("explainer")
        expl = worst[worst.explainer.map(explanation_based)]
        base = worst[~worst.index.isin(expl.index)]
        parts = [f"**{d} · {m}.** {n_clean} clean images, each the negative of its pair; positives, the successful "
                 f"adversarials of correctly classified images: {cells}. Five-fold (or more) cross-validation over "
                 "images, twins in one fold."]
        ranking = ", ".join(f"{r.explainer} {fmt(r)} ({r.attack})" for r in worst.itertuples())
        parts.append(f"Worst held-out AUROC per detector (the attack it did worst on without seeing it), best first: "
                     f"{ranking}. {ranking_sentence(worst, 'explainer', 'worst held-out AUROC')}")
        if len(expl) and len(base):
            e, b = expl.iloc[0], base.iloc[0]
            e_tpr = tpr.loc[e.explainer]
            met = e.value >= GOAL["auroc"] and e_tpr.value >= GOAL["tpr_at_5fpr"] and compare(e, b) == "higher than"
            gap_a, gap_t = GOAL["auroc"] - e.value, GOAL["tpr_at_5fpr"] - e_tpr.value
            verdict = "met" if met else "not met"
            parts.append(
                f"Goal (an explanation-map detector with held-out AUROC ≥ {GOAL['auroc']:.2f} and TPR at 5 % FPR ≥ "
                f"{GOAL['tpr_at_5fpr']:.2f} on every held-out attack, above the best baseline): **{verdict}**. "
                f"Best explanation-map detector {e.explainer}: worst held-out AUROC {fmt(e)}, TPR at 5 % FPR "
                f"{fmt(e_tpr)}; best non-explanation baseline {b.explainer}: {fmt(b)} — the explanation detector is "
                f"{compare(e, b)} it. "
                + ("" if met else f"Distance to the goal: AUROC {max(gap_a, 0):.3f}, TPR {max(gap_t, 0):.3f}. ")
                + fitted_on_sentence(g, e))
        seen = g[(g.target == "seen") & (g.metric == "auroc")]
        if len(seen):
            s_best = seen.loc[seen.value.idxmax()]
            ma = ANCHORS["Ma et al. 2021 (seen attacks, deep features)"][1]
            parts.append(f"On attacks they saw, the best cell is {s_best.explainer} on {s_best.attack} at ε = "
                         f"{s_best.eps:g}, AUROC {fmt(s_best)}, "
                         f"{'at or above' if s_best.value >= ma else 'below'} the {ma:.2f} Ma et al. (2021) report.")
        ad = g[(g.metric == "auroc") & g.target.isin(["plain", "adaptive"])].set_index("target")
        ev = g[(g.metric == "evasion_rate") & g.target.isin(["plain", "adaptive"])].set_index("target")
        if len(ad) == 2:
            p_, a_ = ad.loc["plain"], ad.loc["adaptive"]
            parts.append(f"Adaptive attack on {p_.explainer} ({p_.attack} at ε = {p_.eps:g}, one test fold): AUROC "
                         f"{fmt(a_)} against {fmt(p_)} for the plain attack ({compare(a_, p_)}); the share of "
                         "correctly classified images fooled *and* passing the 5 %-FPR threshold is "
                         f"{fmt(ev.loc['adaptive'])} against {fmt(ev.loc['plain'])}.")
            robust = a_.ci_low >= 0.9 if has_ci(a_) else False
            lowered = compare(a_, p_) == "lower than"
        else:
            robust = lowered = None
        if len(expl):
            e = expl.iloc[0]
            answer = ("yes, for attacks it never saw" if e.ci_low >= 0.9 else
                      "partly: well above chance on attacks it never saw, below a deployable level"
                      if e.ci_low > 0.5 else "not reliably: at chance on at least one attack it never saw")
            tail = ("" if robust is None else " and it survives an attacker who knows it" if robust
                    else ", and an attacker who knows the detector lowers it further" if lowered
                    else "; the adaptive attack, aimed through a surrogate of the detector, did not lower it, which is "
                         "no evidence of robustness (a surrogate attack bounds the attacker's strength from below)")
            parts.append(f"**Can the explanation tell you that you are being attacked?** On {d}: {answer}{tail}.")
        out.append(" ".join(parts))
    return "\n\n".join(out)


def grid_md(provenance: dict[str, dict]) -> str:
    """What was run, from the runs' recorded parameters: datasets, sizes, models, attacks, ε, images."""
    lines = []
    for p in sorted(provenance.values(), key=lambda p: (p["stage"], p["label"])):
        q = p["parameters"]
        if p["stage"] == "attack":
            lines.append(f"- Grad-Attacks on **{q['dataset']} {q['size']} px · {q['model']}**: "
                         f"{', '.join(q['attacks'])} at ε ∈ {{{', '.join(f'{e:g}' for e in q['eps'])}}} on "
                         f"{q['n_images']} class-balanced test images (seed {q['seed']}).")
        elif p["stage"] == "radarmix":
            costly = ", ".join(f"{k} on {v}" for k, v in q["n_explain"].items())
            lines.append(f"- RADAR-MIX on **{q['dataset']} {q['size']} px · {q['model']}**: "
                         f"{', '.join(q['attacks'])} at ε ∈ {{{', '.join(f'{e:g}' for e in q['eps'])}}} on "
                         f"{q['n_images']} class-balanced `{q['split']}` images; explainers "
                         f"{', '.join(q['explainers'])}" + (f" ({costly} images)" if costly else "")
                         + f"; targets {', '.join(q['targets'])}; top-k share {q['topk']:g}.")
    return "\n".join(lines) if lines else NOT_RUN
