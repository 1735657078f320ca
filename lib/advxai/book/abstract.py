"""The book's answers as facts: each a number with its interval, or the word its intervals decide, computed from the
result rows and glued as text (``abs-*``). The sentences that carry them are written in ``book/intro.md``'s abstract,
where an author edits them; a test checks the facts, not the wording.

A fact a build cannot compute (the part was not run) reads :data:`NOT_IN_BUILD`, so a sentence never shows a stale
or invented number."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..detect.detectors import MAP_GROUP, OTHER_GROUPS
from .grammar import MINIMAL, per_255
from .style import compare, has_ci

NOT_IN_BUILD = "— (not run in this build: make study runs it)"  # plain: {glue:text} shows no Markdown


def _pct(r) -> str:
    """``93 % [86, 97]``: a proportion with its interval, in percent."""
    if not has_ci(r):
        return f"{100 * r.value:.0f} % (n = {int(r.n)})"
    return f"{100 * r.value:.0f} % [{100 * r.ci_low:.0f}, {100 * r.ci_high:.0f}]"


def _num(r) -> str:
    return f"{r.value:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]" if has_ci(r) else f"{r.value:.2f} (n = {int(r.n)})"


def _largest_eps(att: pd.DataFrame) -> pd.DataFrame:
    """Each (dataset, model)'s rows at its own largest ε."""
    top = att.groupby(["dataset", "model"]).eps.transform("max")
    return att[att.eps == top]


def sizes(df: pd.DataFrame) -> dict[str, str]:
    """The image sizes of the build's trained models (dataset names end in ``_<px>``): ``28–64 px``."""
    px = sorted({int(d.rsplit("_", 1)[1]) for d in df.dataset.dropna().unique() if d.rsplit("_", 1)[-1].isdigit()})
    return {"abs-sizes": NOT_IN_BUILD if not px else f"{px[0]}–{px[-1]} px" if len(px) > 1 else f"{px[0]} px"}


def fooling(df: pd.DataFrame) -> dict[str, str]:
    """The strongest ε-bounded attack per model at its largest ε (highest fooling rate on correctly classified
    images), and the least-fooled model's rate: how well the attacks work on every model of the build; and how many
    models the build trained."""
    att = df[(df.stage == "attack") & (df.attack != "none") & (df.metric == "fooling_rate")
             & (df.subset == "correct") & ~df.attack.isin(MINIMAL)]  # DeepFool, C&W: no ε budget to compare at
    trained = str(df[df.stage == "train"].groupby(["dataset", "model"]).ngroups or NOT_IN_BUILD)
    if att.empty:
        return {"abs-models": trained, **{k: NOT_IN_BUILD for k in ("abs-eps", "abs-fool", "abs-fool-best")}}
    top = _largest_eps(att).sort_values("value").groupby(["dataset", "model"]).tail(1)
    low = top.sort_values("value").iloc[0]
    return {"abs-models": trained, "abs-eps": per_255(float(top.eps.max())),
            "abs-fool": f"{_pct(low)} ({low.attack}, {low.dataset} · {low.model})",
            "abs-fool-best": _pct(top.sort_values("value").iloc[-1])}


def shift(df: pd.DataFrame, stage: str = "strength", metric: str = "mod", prefix: str = "abs-shift",
          explainer: str = "gradcam", moved: str = "higher than") -> dict[str, str]:
    """Grad-CAM change on fooled against not-fooled images at each model's largest ε, per (model, attack): the
    median of each side, and in how many rows the fooled side moved more with intervals apart (``moved``: the
    comparison word that means more change: MOD higher, top-k IoU lower), over the rows with an interval on both
    sides (``-apart``), and how many rows lack one (``-few``: too few images on a side, often the not-fooled one at
    the largest ε)."""
    s = df[(df.stage == stage) & (df.metric == metric) & (df.attack != "none") & (df.explainer == explainer)
           & (df.target == "predicted")]
    s = _largest_eps(s)
    rows = []
    for _, g in s.groupby(["dataset", "model", "attack"]):
        f, nf = g[g.subset == "fooled"], g[g.subset == "not_fooled"]
        if len(f) and len(nf) and f.iloc[0].n and nf.iloc[0].n:
            rows.append((f.iloc[0], nf.iloc[0]))
    if not rows:  # "not run" said once, by the sentence's first fact
        return {f"{prefix}-fooled": NOT_IN_BUILD, f"{prefix}-not": "—", f"{prefix}-apart": "—", f"{prefix}-few": "—"}
    words = [compare(f, nf) for f, nf in rows]
    comparable = sum(w != "not comparable with" for w in words)
    return {f"{prefix}-fooled": f"{np.median([f.value for f, _ in rows]):.2f}",
            f"{prefix}-not": f"{np.median([nf.value for _, nf in rows]):.2f}",
            f"{prefix}-apart": count_of(words.count(moved), comparable, "model × attack comparison") if comparable
            else "no model × attack comparison",
            f"{prefix}-few": _more(len(rows) - comparable)}


def _more(k: int) -> str:
    """How many more comparisons lack an interval, with the verb in its number: "none has", "1 more has"."""
    return "none has" if k == 0 else f"{k} more {'has' if k == 1 else 'have'}"


def count_of(k: int, n: int, noun: str = "") -> str:
    """``k`` of ``n`` as a sentence says it before a plural noun: "none of the 2", "1 of the 4", "both", "all 4";
    with ``noun`` (singular) the noun too, in the number it takes: "no setting", "the one setting", "none of the
    18 settings", "3 of the 18 settings"."""
    if noun:
        if n == 1:
            return f"the one {noun}" if k else f"no {noun}"
        return f"{count_of(k, n)} {noun}s"
    if k == 0:
        return "no" if n == 1 else f"none of the {n}"
    if k == n:
        return "the one" if n == 1 else "both" if n == 2 else f"all {n}"
    return f"{k} of the {n}"


def detection(settings: pd.DataFrame, chosen: dict | None = None) -> dict[str, str]:
    """The secondary measure, per setting (:func:`advxai.book.aggregate.detection_settings`): the worst held-out
    AUROC of the two detectors the answer compares — the pair chosen on the seen cells (``chosen``: setting ->
    (map detector, other), from :func:`pooled_answer`), else the best of each side by this very number — one
    setting: both numbers and the word their intervals decide; several: the medians and a count of each word."""
    if settings.empty or not (settings.group == MAP_GROUP).any():
        return {k: NOT_IN_BUILD for k in ("abs-det-map", "abs-det-other", "abs-det-word", "abs-det-settings")}
    pairs = []
    for key, g in settings.groupby(["dataset", "model"]):
        rows = g.rename(columns={"auroc": "value"}).assign(n=np.nan).set_index("detector", drop=False)
        if chosen and key in chosen and set(chosen[key]) <= set(rows.index):
            pairs.append((rows.loc[chosen[key][0]], rows.loc[chosen[key][1]]))
            continue
        ex, other = rows[rows.group == MAP_GROUP], rows[rows.group.isin(OTHER_GROUPS)]
        if len(ex) and len(other):
            pairs.append((ex.loc[ex.value.idxmax()], other.loc[other.value.idxmax()]))
    words = [compare(e, o) for e, o in pairs]
    if len(pairs) == 1:
        (e, o), = pairs
        return {"abs-det-map": f"{_num(e)} ({e.detector})", "abs-det-other": f"{_num(o)} ({o.detector}, {o.group})",
                "abs-det-word": words[0], "abs-det-settings": "1"}
    counts = pd.Series(words).value_counts()
    said = ", ".join(f"{w} it in {c}" for w, c in counts.items())
    return {"abs-det-map": f"median {np.median([e.value for e, _ in pairs]):.2f}",
            "abs-det-other": f"median {np.median([o.value for _, o in pairs]):.2f}",
            "abs-det-word": f"over {len(pairs)} settings: {said}", "abs-det-settings": str(len(pairs))}


def evasion(df: pd.DataFrame) -> dict[str, str]:
    """The adaptive attack's evasion rate on the attacked explanation-map detector at the cell's ε (the ε its
    sanity checks run at), the lowest over settings."""
    from .detplots import group_of

    ad = df[(df.stage == "detection") & (df.attack == "adaptive") & (df.metric == "evasion_rate")
            & (df.target == "best λ")]
    ad = ad[ad.explainer.map(group_of) == MAP_GROUP]
    checks = df[(df.stage == "detection") & (df.attack == "adaptive") & (df.target == "2× steps + restart")]
    if ad.empty or checks.empty:
        return {"abs-evade": NOT_IN_BUILD, "abs-evade-eps": NOT_IN_BUILD}
    e0 = float(checks.eps.iloc[0])
    at = ad[np.isclose(ad.eps, e0)].sort_values("value")
    if at.empty:
        return {"abs-evade": NOT_IN_BUILD, "abs-evade-eps": NOT_IN_BUILD}
    low = at.iloc[0]
    return {"abs-evade": f"{_pct(low)} ({low.explainer})", "abs-evade-eps": per_255(e0)}


def answer(detection_dirs: list) -> dict[str, str]:
    """The detection answer: per setting (dataset, architecture, training seed; standard models only), the paired
    held-out-family AUROC difference between the best explanation-map detector and the best other detector, both
    chosen on the seen cells (each detection run's ``family_diff.npz``, :func:`advxai.studies.detection.
    map_vs_other`), pooled over settings by a hierarchical bootstrap over datasets, settings and images
    (:func:`advxai.detect.protocol.pooled_over_settings`); the word the pooled interval decides against 0."""
    return _answer(*pooled_answer(detection_dirs))


def _diff_word(lo: float, hi: float) -> str:
    return ("not comparable with" if not (np.isfinite(lo) and np.isfinite(hi)) else "lower than" if hi < 0
            else "higher than" if lo > 0 else "indistinguishable from")


def _answer(pooled, chosen: dict, n: int, nd: int) -> dict[str, str]:
    """:func:`answer`'s facts from :func:`pooled_answer`'s result."""
    keys = ("abs-det-diff", "abs-det-diff-word", "abs-det-diff-over", "abs-det-pair")
    if pooled is None:
        return {k: NOT_IN_BUILD for k in keys}
    v, lo, hi = pooled
    word = _diff_word(lo, hi)
    pairs = [" against ".join(p) for p in chosen.values()]
    common = max(set(pairs), key=pairs.count)
    return {"abs-det-diff": f"{v:+.2f} [{lo:+.2f}, {hi:+.2f}]", "abs-det-diff-word": word,
            "abs-det-diff-over": f"{n} setting{'s' * (n > 1)} on {nd} dataset{'s' * (nd > 1)}",
            "abs-det-pair": common if len(set(pairs)) == 1 else f"most often {common}, on {pairs.count(common)} of {n}"}


def family_diffs(detection_dirs: list) -> dict[tuple[str, str], tuple]:
    """Each standard model's saved held-out-family difference: (dataset_px, model) -> (replicates, value, pair).
    Adversarially trained models are the Robust models chapter's."""
    import json
    from pathlib import Path

    from ..artefacts import load_npz
    from .robust import standard_of

    out = {}
    for d in map(Path, detection_dirs):
        if not (d / "family_diff.npz").exists() or not (d / "provenance.json").exists():
            continue
        p = json.loads((d / "provenance.json").read_text())["parameters"]
        if standard_of(p["model"]) is not None:
            continue
        z = load_npz(d / "family_diff.npz")
        out[(f"{p['dataset']}_{p['size']}", p["model"])] = (z["replicates"], float(z["value"]),
                                                            tuple(map(str, z["pair"])))
    return out


def _pooled(diffs: dict) -> tuple[tuple[float, float, float] | None, dict, int, int]:
    from ..detect.protocol import pooled_over_settings

    if not diffs:
        return None, {}, 0, 0
    reps, points = {k: v[0] for k, v in diffs.items()}, {k: v[1] for k, v in diffs.items()}
    return (pooled_over_settings(reps, points), {k: v[2] for k, v in diffs.items()}, len(diffs),
            len({k[0] for k in diffs}))


def pooled_answer(detection_dirs: list) -> tuple[tuple[float, float, float] | None, dict, int, int]:
    """The pooled difference (value, low, high) of :func:`answer`, the pair compared in each setting (setting ->
    (map detector, other)), and how many settings and datasets it pools; ``(None, {}, 0, 0)`` without detection
    runs that span two families."""
    return _pooled(family_diffs(detection_dirs))


def _by_dataset(diffs: dict) -> dict[str, str]:
    parts = []
    for name in sorted({k[0] for k in diffs}):
        (v, lo, hi), _, n, _ = _pooled({k: d for k, d in diffs.items() if k[0] == name})
        parts.append(f"{' '.join(name.rsplit('_', 1))} px {v:+.2f} [{lo:+.2f}, {hi:+.2f}] "
                     f"({_diff_word(lo, hi).split()[0]}, {n} setting{'s' * (n > 1)})")
    return {"abs-det-diff-by-dataset": "; ".join(parts) if parts else NOT_IN_BUILD}


def by_dataset(detection_dirs: list) -> dict[str, str]:
    """The pooled difference on each dataset alone, with its word (``abs-det-diff-by-dataset``): whether the answer
    holds on every dataset or rests on one."""
    return _by_dataset(family_diffs(detection_dirs))


def facts(df: pd.DataFrame, settings: pd.DataFrame, detection_dirs: list | None = None) -> dict[str, str]:
    """Every ``abs-*`` fact of the abstract, by glue name."""
    diffs = family_diffs(detection_dirs or [])  # read once: the pooled answer, its pair, each dataset alone
    pooled = _pooled(diffs)
    return {**sizes(df), **fooling(df), **shift(df), **shift(df, "radarmix", "iou", "abs-iou", moved="lower than"),
            **detection(settings, pooled[1]), **_answer(*pooled), **_by_dataset(diffs), **evasion(df)}


def glue_facts(df: pd.DataFrame, settings: pd.DataFrame, detection_dirs: list) -> dict[str, str]:
    """Glue every fact (:func:`facts`) as text, not displayed; returns them."""
    from myst_nb import glue

    out = facts(df, settings, detection_dirs)
    for key, fact in out.items():
        glue(key, fact, display=False)
    return out
