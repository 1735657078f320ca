"""Sentences from numbers: every comparative word in the book's prose is chosen here from the values and
their 95 % intervals, never typed by hand.

Two numbers are called different only when their intervals do not overlap (a conservative test); otherwise
the sentence says they cannot be told apart. Below ``tables.MIN_N`` images a number has no interval and is
never ranked. The functions return Markdown; :func:`advxai.book.style.html` turns it into the HTML the book pastes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .detplots import ANCHORS, GOAL, explanation_based, group_of, worst_held_out
from .style import NOT_RUN, SPLIT_MIN, collapsed, compare, fmt, fmt_n, has_ci, md_table, units


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


def _pick(df: pd.DataFrame, **sel) -> pd.DataFrame:
    for k, v in sel.items():
        df = df[np.isclose(df[k], v)] if k == "eps" else df[df[k] == v]
    return df


def clean_md(df: pd.DataFrame) -> str:
    """Table II: per trained (dataset, model) test accuracy, balanced accuracy and AUC with intervals and the bars
    of :mod:`advxai.models.benchmarks` it is held against; one sentence on how many models meet every bar."""
    from ..models import benchmarks

    tr = df[(df.stage == "train") & (df.subset == "test")]
    if tr.empty:
        return NOT_RUN
    rows, unmet_all, n_held = [], [], 0
    for (d, m), g in tr.groupby(["dataset", "model"]):
        v = g.set_index("metric")
        family, _, size = str(d).rpartition("_")
        every = df[(df.stage == "train") & (df.dataset == d) & (df.model == m)]
        bars = benchmarks.check(family or d, int(size) if size.isdigit() else 0, every, benchmarks.majority(every))
        unmet = bars[bars.met != "yes"] if len(bars) else bars
        n_held += bool(len(bars))
        unmet_all += [f"{d} · {m}: {b.metric} on {b.split} {b.ours:.3f} vs {b.bar:.3f}" for b in unmet.itertuples()]
        rows.append({"model": f"{d} · {m}", "test images": int(v.loc["accuracy"].n),
                     "accuracy": fmt(v.loc["accuracy"]), "balanced accuracy": fmt(v.loc["balanced_accuracy"]),
                     "AUC": fmt(v.loc["auc"]),
                     "bars met": f"{len(bars) - len(unmet)} of {len(bars)}" if len(bars) else "no bar"})
    met = n_held - len({u.split(":")[0] for u in unmet_all})
    head = (f"{met} of the {n_held} models held against a published bar meet every one of them"
            + (f"; not met: {'; '.join(unmet_all)}." if unmet_all else ".") if n_held else
            "No published bar applies to these models.")
    return head + "\n\n" + md_table(rows)


def _and(names: list[str]) -> str:
    return "" if not names else names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def goal_met(e, e_tpr, b) -> bool:
    """The detection goal, one definition for every page: the best explanation-map detector's worst held-out AUROC
    ≥ 0.98 and worst TPR at 5 % FPR ≥ 0.90, with its AUROC interval above the best other detector's."""
    return bool(e.value >= GOAL["auroc"] and e_tpr.value >= GOAL["tpr_at_5fpr"] and compare(e, b) == "higher than")


def _tops(groups, label: str) -> str:
    """How often each top group (the attacks tied for the highest value, intervals overlapping) occurs over
    models: ``pgd on 3 models, pgd and deepfool on 1``."""
    tops = [_and(sorted(top_group(g, label)[0])) for g in groups]
    counts = pd.Series([t for t in tops if t], dtype=object).value_counts()
    if counts.empty:
        return "no ranking (too few images for intervals)"
    return ", ".join(f"{k} on {v} model{'s' * (v > 1)}" for k, v in counts.items())


def _grouped(df: pd.DataFrame, keys: list[str]):
    """Groups by ``keys`` and ε units: pixel and σ-unit grids have different ε, so "the largest ε" is per unit."""
    return df.assign(units=df.attack.map(units)).groupby([*keys, "units"])


def fooling_facts(df: pd.DataFrame, stage: str = "attack", prefix: str = "ga") -> dict[str, str]:
    """At each model's largest ε, which attacks rank highest by the fooling rate over the correctly classified
    images (``-top-fooling``) and by the seeds' flip rate over all attacked images (``-top-flip``) — intervals
    overlapping the top one count as tied — counted over models; and the rows behind them, a collapsed table
    (``-fooling-table``, Markdown). The sentences are in the chapters (``book/gradattacks.md``, ``radarmix.md``)."""
    from .abstract import NOT_IN_BUILD

    att = df[(df.stage == stage) & (df.attack != "none")]
    if att.empty:
        return {f"{prefix}-top-fooling": NOT_IN_BUILD, f"{prefix}-top-flip": "—", f"{prefix}-fooling-table": ""}
    rows, fr_groups, fl_groups = [], [], []
    for (d, m, _), g in _grouped(att, ["dataset", "model"]):
        e = g.eps.max()
        fr = _pick(g, eps=e, metric="fooling_rate", subset="correct")
        fl = _pick(g, eps=e, metric="flip_rate", subset="attacked").set_index("attack")
        fr_groups.append(fr)
        fl_groups.append(fl.reset_index())
        rows += [{"model": f"{d} · {m}", "ε": f"{e:g}", "attack": r.attack, "fooling rate (correct)": fmt_n(r),
                  "flip rate (all attacked)": fmt(fl.loc[r.attack]) if r.attack in fl.index else "—"}
                 for r in fr.itertuples()]
    n = len(fr_groups)
    return {f"{prefix}-top-fooling": _tops(fr_groups, "attack"), f"{prefix}-top-flip": _tops(fl_groups, "attack"),
            f"{prefix}-fooling-table": collapsed(f"fooling and flip rates: {len(rows)} rows of {n} model"
                                                 f"{'s' * (n > 1)}, each with its interval and n", md_table(rows))}


def split_md(df: pd.DataFrame, stage: str, metric: str, meaning: str, target: str = "predicted") -> str:
    """At each model's largest ε, ``metric`` on fooled vs not-fooled images (and on fooled images with the ``clean``
    target, where run): a collapsed table with a row per (model, explainer, attack), and one sentence counting the
    rows by comparison — an empty side (no image fooled, none resisted, blank maps) is said once, in the count."""
    s = df[(df.stage == stage) & (df.metric == metric) & (df.attack != "none")]
    if s.empty:
        return NOT_RUN
    blank = df[(df.stage == stage) & (df.metric == "blank_pairs")]
    rows, words, small = [], [], 0
    for (d, m, x, _), g in _grouped(s, ["dataset", "model", "explainer"]):
        e = g.eps.max()
        for a, ga in _pick(g, eps=e).groupby("attack"):
            f, nf = _pick(ga, target=target, subset="fooled"), _pick(ga, target=target, subset="not_fooled")
            if f.empty or nf.empty:
                continue
            f, nf = f.iloc[0], nf.iloc[0]
            if f.n == 0 or nf.n == 0:
                word = "; ".join(_side(sub, r, _size(blank, r, sub)) for sub, r in (("fooled", f), ("not_fooled", nf))
                                 if not r.n)
            else:
                word = compare(f, nf)
            words.append(word)
            few_side = bool(f.n and nf.n and min(f.n, nf.n) < SPLIT_MIN)
            small += few_side
            cl = _pick(ga, target="clean", subset="fooled")
            rows.append({"model": f"{d} · {m}", "explainer": x, "attack": a, "ε": f"{e:g}",
                         "fooled": fmt_n(f) if f.n else "—", "not fooled": fmt_n(nf) if nf.n else "—",
                         "fooled vs not fooled": word + (f" † (a side under {SPLIT_MIN} images)" if few_side else ""),
                         "fooled, clean-class map": fmt_n(cl.iloc[0]) if len(cl) and target != "clean" else "—"})
    if not rows:
        return NOT_RUN
    plain = {"higher than": "fooled higher, intervals apart", "lower than": "fooled lower, intervals apart",
             "indistinguishable from": "intervals overlap", "not comparable with": "too few images for an interval"}
    def kind(w: str) -> str:  # an empty side, said once per kind in the count (its images are in the table)
        return plain.get(w, "maps all blank on one side" if "blank map" in w else w)

    counts = pd.Series([kind(w) for w in words]).value_counts()
    said = "; ".join(f"{k} in {v}" for k, v in counts.items())
    few = (f" {small} of the compared rows rest on fewer than {SPLIT_MIN} images on one side (marked † in the "
           "table); the others on at least that many." if small else
           f" Every compared row rests on at least {SPLIT_MIN} images on each side.")
    return (f"{meaning}. At each model's largest ε, fooled against not-fooled images over {len(rows)} rows "
            f"(model × explainer × attack): {said}.{few}\n\n"
            + collapsed(f"{metric} per row, with intervals", md_table(rows)))


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
        n_clean = int(pos.n.iloc[0]) if len(pos) else 0
        worst = worst_held_out(g, "auroc").sort_values("value", ascending=False)
        tpr = worst_held_out(g, "tpr_at_5fpr").set_index("explainer")
        expl = worst[worst.explainer.map(explanation_based)]
        base = worst[~worst.index.isin(expl.index)]
        from ..detect.detectors import DETECTORS

        cell_rows = [{"attack": r.attack, "ε": f"{r.eps:g}", "positives": int(r.value),
                      "fooling rate": fmt(f.iloc[0]) if len(f) else "—"} for r in pos.itertuples()
                     for f in [fr[(fr.attack == r.attack) & np.isclose(fr.eps, r.eps)]]]
        rank_rows = [{"detector": r.explainer,
                      "reads": DETECTORS[r.explainer].family if r.explainer in DETECTORS else "—",
                      "worst held-out AUROC": fmt(r), "on": r.attack,
                      "TPR at 5 % FPR (worst)": fmt(tpr.loc[r.explainer]) if r.explainer in tpr.index else "—"}
                     for r in worst.itertuples()]
        top, _ = top_group(worst, "explainer")
        lead = (f"{top[0]}, its interval above every other's" if len(top) == 1 else
                f"{len(top)} detectors with overlapping intervals, led by {top[0]}" if top else "no detector")
        parts = [f"**{d} · {m}.** {n_clean} clean images are the negatives; the positives are the successful "
                 f"adversarials of the correctly classified ones ({len(cell_rows)} attack cells). "
                 f"Highest worst held-out AUROC (the attack each detector did worst on without seeing it): {lead}.",
                 "\n\n" + collapsed(f"{len(rank_rows)} detectors and {len(cell_rows)} attack cells",
                                      md_table(rank_rows) + "\n\n" + md_table(cell_rows)) + "\n\n"]
        if len(expl) and len(base):
            e, b = expl.iloc[0], base.iloc[0]
            e_tpr = tpr.loc[e.explainer]
            met = goal_met(e, e_tpr, b)
            gap_a, gap_t = GOAL["auroc"] - e.value, GOAL["tpr_at_5fpr"] - e_tpr.value
            verdict = "met" if met else "not met"
            parts.append(
                f"Goal (an explanation-map detector with held-out AUROC ≥ {GOAL['auroc']:.2f} and TPR at 5 % FPR ≥ "
                f"{GOAL['tpr_at_5fpr']:.2f} on every held-out attack, above the best baseline): **{verdict}**. "
                f"The best explanation-map detector, {e.explainer}, has worst held-out AUROC {fmt(e)} and TPR at 5 % "
                f"FPR {fmt(e_tpr)}. The best other detector, {b.explainer}, has {fmt(b)}: the explanation detector "
                f"is {compare(e, b)} it. "
                + ("" if met else f"Distance to the goal: AUROC {max(gap_a, 0):.3f}, TPR {max(gap_t, 0):.3f}. ")
                + fitted_on_sentence(g, e))
        seen = g[(g.target == "seen") & (g.metric == "auroc")]
        if len(seen):
            s_best = seen.loc[seen.value.idxmax()]
            ma = ANCHORS["Ma et al. 2021 (seen attacks, deep features)"][1]
            parts.append(f"On attacks they saw, the best cell is {s_best.explainer} on {s_best.attack} at ε = "
                         f"{s_best.eps:g}, AUROC {fmt(s_best)}, "
                         f"{'at or above' if s_best.value >= ma else 'below'} the {ma:.2f} Ma et al. (2021) report.")
        # the adaptive attack on the best explanation-map detector (every one of them is attacked)
        hit = g[g.target.isin(["plain", "adaptive"]) & g.explainer.map(explanation_based)]
        name = expl.iloc[0].explainer if len(expl) and (hit.explainer == expl.iloc[0].explainer).any() else (
            hit.explainer.iloc[0] if len(hit) else None)
        ad = hit[(hit.metric == "auroc") & (hit.explainer == name)].set_index("target")
        ev = hit[(hit.metric == "evasion_rate") & (hit.explainer == name)].set_index("target")
        if len(ad) == 2:
            p_, a_ = ad.loc["plain"], ad.loc["adaptive"]
            parts.append(f"Adaptive attack on {p_.explainer} ({p_.attack} at ε = {p_.eps:g}, one test fold): AUROC "
                         f"{fmt(a_)} against {fmt(p_)} for the plain attack ({compare(a_, p_)} it). The share of "
                         "correctly classified images fooled *and* passing the 5 %-FPR threshold is "
                         f"{fmt(ev.loc['adaptive'])} against {fmt(ev.loc['plain'])}.")
            ev_a, ev_p = ev.loc["adaptive"], ev.loc["plain"]
            # an attacker who knows the detector wins if it lowers the AUROC *or* gets more images past it
            robust = bool(has_ci(a_) and has_ci(ev_a) and a_.ci_low >= 0.9 and ev_a.ci_high < 0.1)
            lowered = compare(a_, p_) == "lower than" or compare(ev_a, ev_p) == "higher than"
        else:
            robust = lowered = None
        if len(expl):
            e = expl.iloc[0]
            met = len(base) and goal_met(e, tpr.loc[e.explainer], base.iloc[0])  # the goal decides "yes"
            answer = ("yes, for attacks it never saw (the goal is met)" if met else
                      "partly: well above chance on attacks it never saw, below a deployable level"
                      if e.ci_low > 0.5 else "not reliably: at chance on at least one attack it never saw")
            tail = ("" if robust is None else " and it survives an attacker who knows it" if robust
                    else ", and an attacker who knows the detector gets past it more often than plain PGD" if lowered
                    else "; the adaptive attack, aimed end to end at the real detector, did not lower it (see its "
                         "sanity checks below before reading that as robustness)")
            parts.append(f"**Can the explanation tell you that you are being attacked?** On {d}: {answer}{tail}.")
        out.append(" ".join(parts))
    return "\n\n".join(out)


def _value(r) -> str:
    """:func:`fmt` without the "too few images" aside, for a sentence that says it once."""
    return fmt(r) if has_ci(r) else f"{r.value:.2f}"


def adaptive_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (setting, attacked detector) of the adaptive attack (rows of :func:`advxai.measure.evaluation.
    adaptive_rows`): the group, how the gradient passes (:func:`advxai.detect.differentiable.backward`), the reported
    evasion at each ε (ε-nested, with what the checks found; Wilson intervals), plain PGD's at the cell's ε, the
    check that raised the number (and by how much), and whether the attack reached :data:`WEAK_AT_LARGEST` at its
    largest ε (``_strong``: only then can a low evasion at the cell's ε be read as robustness)."""
    from ..detect.differentiable import backward
    from .detplots import WEAK_AT_LARGEST
    from .grammar import per_255

    ad = df[(df.stage == "detection") & (df.attack == "adaptive")]
    ev = ad[ad.metric == "evasion_rate"]
    rows = []
    for (d, m), g in ev.groupby(["dataset", "model"], sort=False):
        cell_eps = g[g.target == "2× steps + restart"].eps
        if cell_eps.empty:
            continue
        e0 = float(cell_eps.iloc[0])
        for det in dict.fromkeys(g.explainer):
            h = g[g.explainer == det]
            best = h[h.target == "best λ"].set_index("eps").sort_index()
            plain = h[(h.target == "λ=0") & np.isclose(h.eps, e0)].iloc[0]
            added = ad[(ad.dataset == d) & (ad.model == m) & (ad.explainer == det) & (ad.metric == "evasion_added")
                       & (ad.value > 0)]
            row = {"setting": f"{d} · {m}", "detector": det, "reads": group_of(det),
                   "gradient": backward(det) if det in _registered() else "—"}
            row.update({f"evaded at ε = {per_255(e)}": fmt(r) for e, r in best.iterrows()})
            row[f"plain PGD at {per_255(e0)}"] = fmt(plain)
            row["raised by"] = "; ".join(f"{r.target} (+{r.value:.2f})" for r in added.itertuples()) or "—"
            row["_strong"] = bool(best.iloc[-1].value >= WEAK_AT_LARGEST)
            row["_at_cell"], row["_e0"] = best.loc[best.index[np.isclose(best.index, e0)][0]], e0
            rows.append(row)
    return pd.DataFrame(rows)


def _registered() -> set[str]:
    from ..detect.detectors import DETECTORS

    return set(DETECTORS.names())


def adaptive_md(df: pd.DataFrame) -> str:
    """The adaptive attack in two sentences decided from :func:`adaptive_table`, and the table (one per setting,
    each but the first collapsed)."""
    from .detplots import WEAK_AT_LARGEST
    from .grammar import per_255

    t = adaptive_table(df)
    if t.empty:
        return "*No adaptive attack in this configuration.*"
    maps = t[t.reads == "explanation maps"]
    weak = t[~t._strong]
    raised = t[t["raised by"] != "—"]
    low = maps.loc[maps._at_cell.map(lambda r: r.value).idxmin()] if len(maps) else None
    says = []
    if low is not None:
        says.append(f"Of the explanation-map detectors attacked, the hardest to get past was {low.detector} "
                    f"({low.setting}): {fmt(low._at_cell)} of the attacked images evaded it at ε = "
                    f"{per_255(low._e0)}.")
    says.append(f"At the largest ε the attack reached {WEAK_AT_LARGEST:g} on {len(t) - len(weak)} of {len(t)} "
                "attacked detectors" + ("." if weak.empty else "; on " + ", ".join(
                    f"{r.detector} ({r.setting})" for r in weak.head(6).itertuples())
                    + " it did not, so a low evasion there is not evidence of robustness."))
    says.append("No check found an image the attack had missed." if raised.empty else
                "A stronger check found images the attack had missed, and raised the reported number, for "
                + ", ".join(f"{r.detector} ({r.setting})" for r in raised.head(6).itertuples()) + ".")
    tables = []
    for i, (setting, g) in enumerate(t.groupby("setting", sort=False)):
        body = md_table(g.drop(columns=["setting", "_at_cell", "_e0", "_strong"]).assign(
            **{f"reached {WEAK_AT_LARGEST:g} at largest ε": g._strong.map({True: "yes", False: "no: too weak"})}
        ).to_dict("records"))
        tables.append(body if i == 0 else collapsed(setting, body))
    return " ".join(says) + "\n\n" + "\n\n".join(tables)


def grid_md(provenance: dict[str, dict]) -> str:
    """What was run, from the runs' recorded parameters: datasets, sizes, models, attacks, ε, images. Runs that
    differ only in their model (an architecture, or its ``·sN`` training seed) share a line."""
    lines: dict[tuple[str, str], dict[str, None]] = {}
    for p in sorted(provenance.values(), key=lambda p: (p["stage"], p["label"])):
        if p["stage"] not in ("attack", "radarmix"):
            continue
        q = p["parameters"]
        grid = f"{', '.join(q['attacks'])} at ε ∈ {{{', '.join(f'{e:g}' for e in q['eps'])}}}"
        if q.get("eps_units", "pixel") != "pixel":
            grid += f" (in {q['eps_units']} units)"
        if p["stage"] == "attack":
            what = (f"Grad-Attacks on **{q['dataset']} {q['size']} px**",
                    f"{grid} on {q['n_images']} class-balanced test images (sample and attack seed {q['seed']})")
        else:
            costly = ", ".join(f"{k} on {v}" for k, v in q["n_explain"].items())
            what = (f"RADAR-MIX on **{q['dataset']} {q['size']} px**",
                    f"{grid} on {q['n_images']} class-balanced `{q['split']}` images; explainers "
                    f"{', '.join(q['explainers'])}" + (f" ({costly} images)" if costly else "")
                    + f"; targets {', '.join(q['targets'])}; top-k share {q['topk']:g}")
        lines.setdefault(what, {})[q["model"]] = None  # a dict: each model once, in order
    if not lines:
        return NOT_RUN
    seeds = any("·s" in m for models in lines.values() for m in models)
    return "\n".join(f"- {head} · {', '.join(models)}: {rest}." for (head, rest), models in lines.items()) + (
        "\n\n·s*N*: the same architecture trained from seed *N*." if seeds else "")
