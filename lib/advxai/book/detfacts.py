"""The Detection chapter's sentences as *facts*: the names, numbers with intervals and the words their intervals
decide, computed here and glued as text (``det-*``); the sentences that carry them are written in
``book/detection.md``, where an author edits them, and tests check the facts, not the wording.

Three scales, one rule each: one setting (:func:`setting`, the worked setting's ``det-w-*`` and one row per setting
of :func:`settings_table`), every setting (:func:`across`, :func:`family`) and the adaptive attack
(:func:`adaptive`). A fact a build cannot compute reads :data:`advxai.book.abstract.NOT_IN_BUILD`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .abstract import NOT_IN_BUILD, count_of
from .detplots import ANCHORS, GOAL, WEAK_AT_LARGEST, explanation_based, worst_held_out
from .grammar import MINIMAL, per_255
from .style import collapsed, compare, fmt, has_ci, md_table

MA = ANCHORS["Ma et al. 2021 (seen attacks, deep features)"][1]
GOAL_TEXT = (f"worst held-out AUROC ≥ {GOAL['auroc']:.2f} and TPR at 5 % FPR ≥ {GOAL['tpr_at_5fpr']:.2f}, "
             "above every other detector")


def goal_met(e, e_tpr, b) -> bool:
    """The detection goal, one definition for every page: the best explanation-map detector's worst held-out AUROC
    ≥ 0.98 and worst TPR at 5 % FPR ≥ 0.90, with its AUROC interval above the best other detector's."""
    return bool(e.value >= GOAL["auroc"] and e_tpr.value >= GOAL["tpr_at_5fpr"] and compare(e, b) == "higher than")


def fitted_on(g: pd.DataFrame, r) -> str:
    """How much detector ``r``'s held-out number depends on what it was fitted on: its AUROC on the same cell
    fitted on one other attack at a time (the transfer rows), lowest to highest, against ``r`` (fitted on all of
    them), and whether one of them is below chance (then a ranking of held-out numbers holds for this set of
    attacks only). A detector fitted on clean images only never sees an attack: what it was fitted on cannot
    matter."""
    from ..detect.detectors import DETECTORS
    from ..detect.protocol import CLEAN_ONLY_FITS

    if r.explainer in DETECTORS and DETECTORS[r.explainer].fit in CLEAN_ONLY_FITS:
        return "not applicable: it is fitted on clean images only, never on an attack"
    tr = g[(g.metric == "auroc") & (g.explainer == r.explainer) & (g.attack == r.attack) & np.isclose(g.eps, r.eps)
           & g.target.str.startswith("from ") & ~g.target.str.startswith(f"from {r.attack}@")]
    if len(tr) < 2:
        return "not measured (fewer than two other attacks to fit on)"
    lo, hi = tr.loc[tr.value.idxmin()], tr.loc[tr.value.idxmax()]
    below = has_ci(lo) and lo.ci_high < 0.5
    return (f"from {fmt(lo)} ({lo.target.removeprefix('from ')}) to {fmt(hi)} ({hi.target.removeprefix('from ')}), "
            f"against {fmt(r)} fitted on all of them"
            + (" — below chance for one, so a ranking of held-out numbers holds for this set of attacks only"
               if below else ""))


def _distance(e, e_tpr, b, met: bool) -> str:
    """How far the best explanation-map detector is from the goal: each threshold it misses by how much, or that
    it is not above the best other detector."""
    if met:
        return "none: the goal is met"
    gaps = [f"{what} {gap:.3f}" for what, gap in (("AUROC", GOAL["auroc"] - e.value),
                                                  ("TPR", GOAL["tpr_at_5fpr"] - e_tpr.value)) if gap > 0]
    if compare(e, b) != "higher than":
        gaps.append(f"not above {b.explainer}")
    return ", ".join(gaps)


def _lead(top: list[str]) -> str:
    return (f"{top[0]}, its interval above every other's" if len(top) == 1 else
            f"{len(top)} detectors with overlapping intervals, led by {top[0]}" if top else "no detector")


def setting(g: pd.DataFrame) -> dict[str, str]:
    """One setting's facts (one (dataset, model)'s detection rows): the sample, the leading detector, the goal, the
    best explanation-map detector against the best other, what it was fitted on, the best seen cell against Ma et
    al.'s anchor, the adaptive attack on that detector, and the answer to the book's question that follows."""
    from .narrative import top_group

    d, m = g.dataset.iloc[0], g.model.iloc[0]
    pos = g[g.metric == "n_adversarial"]
    worst = worst_held_out(g, "auroc").sort_values("value", ascending=False)
    tpr = worst_held_out(g, "tpr_at_5fpr").set_index("explainer")
    expl, base = worst[worst.explainer.map(explanation_based)], worst[~worst.explainer.map(explanation_based)]
    out = {"setting": f"{d} · {m}", "negatives": str(int(pos.n.iloc[0])) if len(pos) else "—",
           "cells": str(len(pos)), "lead": _lead(top_group(worst, "explainer")[0])}
    met = False
    if len(expl) and len(base):
        e, b = expl.iloc[0], base.iloc[0]
        e_tpr = tpr.loc[e.explainer]
        met = goal_met(e, e_tpr, b)
        out.update(goal="met" if met else "not met", map=e.explainer, map_auroc=fmt(e), map_tpr=fmt(e_tpr),
                   other=b.explainer, other_auroc=fmt(b), compare=compare(e, b), fitted=fitted_on(g, e),
                   distance=_distance(e, e_tpr, b, met))
    seen = g[(g.target == "seen") & (g.metric == "auroc")]
    if len(seen):
        s = seen.loc[seen.value.idxmax()]
        where = "" if s.attack in MINIMAL else f" at ε = {per_255(s.eps)}"  # DeepFool, C&W: no ε budget
        out.update(seen=f"{s.explainer} on {s.attack}{where}, AUROC {fmt(s)}",
                   seen_ma="at or above" if s.value >= MA else "below")
    out.update(_adaptive_on(g, expl.iloc[0].explainer if len(expl) else None))
    if len(expl):
        e = expl.iloc[0]
        answer = ("yes, for attacks it never saw (the goal is met)" if met else
                  "partly — well above chance on attacks it never saw, below a deployable level" if e.ci_low > 0.5
                  else "not reliably — at chance on at least one attack it never saw")
        tails = {"robust": " and it survives an attacker who knows it",
                 "lowered": "; an attacker who knows the detector gets past it more often than plain PGD",
                 "kept": "; the adaptive attack's AUROC and evasion stay within the intervals of plain PGD's (read "
                         "its sanity checks before calling that robustness)"}
        out["answer"] = answer + tails.get(out.get("adv_outcome"), "")
    return out


def _adaptive_on(g: pd.DataFrame, best: str | None) -> dict[str, str]:
    """The adaptive attack on the setting's best explanation-map detector (else the first one attacked): AUROC and
    evasion against plain PGD, and the outcome that decides the answer's tail: ``robust`` (AUROC ≥ 0.9 and evasion
    under 0.1, both intervals, by an attack that reached :data:`WEAK_AT_LARGEST` at its largest ε), ``lowered`` (a
    lower AUROC or a higher evasion, intervals apart) or ``kept``."""
    hit = g[g.target.isin(["plain", "adaptive"]) & g.explainer.map(explanation_based)]
    name = best if best is not None and (hit.explainer == best).any() else (
        hit.explainer.iloc[0] if len(hit) else None)
    ad = hit[(hit.metric == "auroc") & (hit.explainer == name)].set_index("target")
    ev = hit[(hit.metric == "evasion_rate") & (hit.explainer == name)].set_index("target")
    if len(ad) != 2 or len(ev) != 2:
        return {}
    p_, a_, ev_p, ev_a = ad.loc["plain"], ad.loc["adaptive"], ev.loc["plain"], ev.loc["adaptive"]
    curve = g[(g.attack == "adaptive") & (g.target == "best λ") & (g.metric == "evasion_rate") & (g.explainer == name)]
    strong = len(curve) and curve.loc[curve.eps.idxmax()].value >= WEAK_AT_LARGEST  # else a low evasion proves nothing
    robust = strong and has_ci(a_) and has_ci(ev_a) and a_.ci_low >= 0.9 and ev_a.ci_high < 0.1
    lowered = compare(a_, p_) == "lower than" or compare(ev_a, ev_p) == "higher than"
    return {"adv_detector": name, "adv_cell": f"{p_.attack} at ε = {per_255(p_.eps)}", "adv_auroc": fmt(a_),
            "adv_plain": fmt(p_), "adv_word": compare(a_, p_), "adv_evasion": fmt(ev_a), "adv_evasion_plain": fmt(ev_p),
            "adv_outcome": "robust" if robust else "lowered" if lowered else "kept"}


WORKED_KEYS = ("setting", "negatives", "cells", "lead", "goal", "map", "map_auroc", "map_tpr", "other",
               "other_auroc", "compare", "distance", "fitted", "seen", "seen_ma", "adv_detector",
               "adv_cell", "adv_auroc", "adv_plain", "adv_word", "adv_evasion", "adv_evasion_plain", "answer")


def worked(g: pd.DataFrame) -> dict[str, str]:
    """The worked setting's facts by glue name (``det-w-*``), every key present; and ``det-ma`` (Ma et al.'s
    anchor) and ``det-goal`` (the goal in words)."""
    det = g[g.stage == "detection"]
    facts = setting(det) if (det.target == "held_out").any() else {}
    missing = {"setting"} | {k for k in WORKED_KEYS if k.startswith("adv_")}  # whole sentences: "not run"
    out = {f"det-w-{k.replace('_', '-')}": facts.get(k, NOT_IN_BUILD if k in missing else "—") for k in WORKED_KEYS}
    return {**out, "det-ma": f"{MA:.2f}", "det-goal": GOAL_TEXT}


def worked_tables(g: pd.DataFrame) -> str:
    """The worked setting's numbers behind its facts, collapsed: each detector's worst held-out AUROC (the attack it
    did worst on, its TPR at 5 % FPR) and each attack cell's positives and fooling rate."""
    from ..detect.detectors import DETECTORS

    g = g[g.stage == "detection"]
    if not (g.target == "held_out").any():
        return ""
    pos = g[g.metric == "n_adversarial"]
    fr = g[(g.metric == "fooling_rate") & (g.target == "none")]
    worst = worst_held_out(g, "auroc").sort_values("value", ascending=False)
    tpr = worst_held_out(g, "tpr_at_5fpr").set_index("explainer")
    cells = [{"attack": r.attack, "ε": per_255(r.eps), "positives": int(r.value),
              "fooling rate": fmt(f.iloc[0]) if len(f) else "—"} for r in pos.itertuples()
             for f in [fr[(fr.attack == r.attack) & np.isclose(fr.eps, r.eps)]]]
    ranks = [{"detector": r.explainer, "reads": DETECTORS[r.explainer].family if r.explainer in DETECTORS else "—",
              "worst held-out AUROC": fmt(r), "on": r.attack,
              "TPR at 5 % FPR (worst)": fmt(tpr.loc[r.explainer]) if r.explainer in tpr.index else "—"}
             for r in worst.itertuples()]
    return collapsed(f"{len(ranks)} detectors and {len(cells)} attack cells",
                     md_table(ranks) + "\n\n" + md_table(cells))


def settings_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per setting: the facts of :func:`setting` that a reader compares across settings."""
    det = df[df.stage == "detection"]
    rows = []
    for _, g in det.groupby(["dataset", "model"]):
        if not (g.target == "held_out").any():
            continue
        f = setting(g)
        rows.append({"setting": f["setting"], "clean images": f["negatives"],
                     "best map detector: worst held-out AUROC": f"{f.get('map', '—')}: {f.get('map_auroc', '—')}",
                     "best other": f"{f.get('other', '—')}: {f.get('other_auroc', '—')}",
                     "map vs other": f.get("compare", "—"), "goal": f.get("goal", "—"),
                     "evaded, adaptive / plain": f"{f.get('adv_evasion', '—')} / {f.get('adv_evasion_plain', '—')}",
                     "answer": f.get("answer", "—")})
    return pd.DataFrame(rows)


def across(s: pd.DataFrame) -> dict[str, str]:
    """Every setting's facts (``s``: :func:`advxai.book.aggregate.detection_settings`): how many settings of which
    make-up, which groups hold a detector tied for the best and on how many, the best explanation-map and the best
    other detector by median, on how many settings the goal is met, the closest setting, and the answer."""
    from .aggregate import detector_summary, setting_verdicts

    keys = ("n", "tops", "map", "other", "goal", "closest", "answer")
    if s.empty:
        return {f"det-across-{k}": NOT_IN_BUILD for k in keys}
    n = s.groupby(["dataset", "model"]).ngroups
    datasets, archs = int(s.dataset.nunique()), int(s.architecture.nunique())
    seeds = int(s.groupby(["dataset", "architecture"]).train_seed.nunique().max())
    summ, verdicts = detector_summary(s), setting_verdicts(s)
    tops = verdicts.top_groups.explode().value_counts()
    out = {"n": f"{n} setting{'s' * (n > 1)} ({datasets} dataset{'s' * (datasets > 1)} × {archs} "
                f"architecture{'s' * (archs > 1)} × {seeds} training seed{'s' * (seeds > 1)})",
           "tops": ", ".join(f"{grp} on {k}" for grp, k in tops.items())}

    def spread(r, group: str = "") -> str:
        name = f"{r.name} ({group})" if group else r.name
        return (f"{name}, median {r['median']:.2f} (range {r['min']:.2f}–{r['max']:.2f})" if n > 1
                else f"{name}, {r['median']:.2f}")

    expl, base = summ[summ.group == "explanation maps"], summ[summ.group != "explanation maps"]
    if len(expl) and len(base):
        k = int(verdicts.met.sum())
        unmet = verdicts.dropna(subset=["explanation"])
        unmet = unmet[~unmet.met].sort_values("e_auroc")
        top = unmet.iloc[-1] if len(unmet) else None
        out.update(map=spread(expl.iloc[0]), other=spread(base.iloc[0], base.iloc[0].group),
                   goal=count_of(k, n, "setting"),
                   closest="no setting misses it" if top is None else
                   f"the closest miss is {top.explanation} on {top.dataset} · {top.model}, AUROC {top.e_auroc:.2f} "
                   f"[{top.e_low:.2f}, {top.e_high:.2f}], TPR {top.e_tpr:.2f}",
                   answer=("Yes, on every setting" if k == n else "No" if k == 0
                           else f"On {count_of(k, n, 'setting')} only"))
    return {f"det-across-{k}": out.get(k, "—") for k in keys}


def family(t: pd.DataFrame, n_settings: int) -> dict[str, str]:
    """Above the leave-one-family-out table (:func:`advxai.book.aggregate.family_table`): over how many settings,
    and the attack families on which the explanation-map group's best detector is weakest and strongest (by the
    table's medians)."""
    keys = ("n", "best", "weakest", "strongest")
    cols = [c for c in t.columns if c.endswith(" left out")]
    ex = t[t.index.str.endswith("(explanation maps)")] if len(t) else t
    med = {c[:-len(" left out")]: float(ex.iloc[0][c].split()[0]) for c in cols if len(ex) and ex.iloc[0][c] != "—"}
    if not med:
        return {f"det-family-{k}": NOT_IN_BUILD for k in keys}
    worst, best = min(med, key=med.get), max(med, key=med.get)
    what = "median " if n_settings > 1 else ""
    return {"det-family-n": f"{n_settings} setting{'s' * (n_settings > 1)}",
            "det-family-best": ex.index[0].split(" (")[0],
            "det-family-weakest": f"{worst} ({what}{med[worst]:.2f})",
            "det-family-strongest": f"{best} ({what}{med[best]:.2f})"}


def adaptive(t: pd.DataFrame) -> dict[str, str]:
    """The adaptive attack over every attacked detector (``t``: :func:`advxai.book.narrative.adaptive_table`): the
    explanation-map detector hardest to get past and its evasion at the cell's ε, on how many detectors the attack
    reached :data:`WEAK_AT_LARGEST` at its largest ε (and which it did not), and where a stronger check raised the
    reported number."""
    keys = ("hardest", "eps", "level", "strong", "weak", "raised")
    if t.empty:
        return {f"det-adv-{k}": NOT_IN_BUILD for k in keys}
    maps = t[t.reads == "explanation maps"]
    low = maps.loc[maps._at_cell.map(lambda r: r.value).idxmin()] if len(maps) else None
    weak, raised = t[~t._strong], t[t["raised by"] != "—"]

    def listed(rows: pd.DataFrame) -> str:
        names = [f"{r.detector} ({r.setting})" for r in rows.head(6).itertuples()]
        return "none" if not names else ", ".join(names) + (f" and {len(rows) - 6} more" if len(rows) > 6 else "")

    return {"det-adv-hardest": "—" if low is None else f"{low.detector} ({low.setting}): {fmt(low._at_cell)}",
            "det-adv-eps": per_255(float(t._e0.iloc[0] if low is None else low._e0)),
            "det-adv-level": f"{WEAK_AT_LARGEST:g}",
            "det-adv-strong": count_of(len(t) - len(weak), len(t), "attacked detector"), "det-adv-weak": listed(weak),
            "det-adv-raised": listed(raised)}


def adaptive_tables(t: pd.DataFrame) -> str:
    """The adaptive attack's rows, one table per setting, each but the first collapsed; empty without them."""
    if t.empty:
        return ""
    tables = []
    for i, (name, g) in enumerate(t.groupby("setting", sort=False)):
        body = md_table(g.drop(columns=["setting", "_at_cell", "_e0", "_strong"]).assign(
            **{f"reached {WEAK_AT_LARGEST:g} at largest ε": g._strong.map({True: "yes", False: "no: too weak"})}
        ).to_dict("records"))
        tables.append(body if i == 0 else collapsed(name, body))
    return "\n\n".join(tables)


def tramer(t: pd.DataFrame) -> dict[str, str]:
    """How many rows of the Tramèr table (:func:`advxai.book.tramer.table`) are implausible under the bound."""
    from .tramer import IMPLAUSIBLE

    if t.empty:
        return {"det-tramer-implausible": NOT_IN_BUILD}
    return {"det-tramer-implausible": count_of(int((t.verdict == IMPLAUSIBLE).sum()), len(t), "row")}
