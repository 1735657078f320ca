"""Results-page tables and the facts behind the chapters' attack sentences: every comparative word is chosen here
from the values and their 95 % intervals, never typed by hand; the sentences are in ``book/*.md``.

Two numbers are called different only when their intervals do not overlap (a conservative test); otherwise they
cannot be told apart. Below ``tables.MIN_N`` images a number has no interval and is never ranked. Tables are
Markdown; :func:`advxai.book.style.html` turns them into the HTML the book pastes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .detplots import group_of
from .style import NOT_RUN, SPLIT_MIN, collapsed, compare, fmt, fmt_n, md_table, units


def top_group(rows: pd.DataFrame, label: str) -> tuple[list[str], list[str]]:
    """Split rows into those indistinguishable from the largest value (intervals overlapping the top row's)
    and the rest, by the ``label`` column. Rows without an interval are left out of both."""
    ok = rows[np.isfinite(rows.ci_low)].sort_values("value", ascending=False)
    if ok.empty:
        return [], []
    best = ok.iloc[0]
    tied = ok[ok.ci_high >= best.ci_low]
    return tied[label].tolist(), ok[~ok.index.isin(tied.index)][label].tolist()


def _pick(df: pd.DataFrame, **sel) -> pd.DataFrame:
    for k, v in sel.items():
        df = df[np.isclose(df[k], v)] if k == "eps" else df[df[k] == v]
    return df


def clean(df: pd.DataFrame) -> dict[str, str]:
    """Table II: per trained (dataset, model) test accuracy, balanced accuracy and AUC with intervals and the bars
    of :mod:`advxai.models.benchmarks` it is held against (``clean-table``, Markdown); how many of the models held
    against a bar meet every one of them (``clean-met``) and each bar not met (``clean-unmet``). The sentence is in
    ``book/gradattacks.md``."""
    from ..models import benchmarks
    from .abstract import NOT_IN_BUILD, count_of

    tr = df[(df.stage == "train") & (df.subset == "test")]
    if tr.empty:
        return {"clean-met": NOT_IN_BUILD, "clean-unmet": "—", "clean-table": ""}
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
    return {"clean-met": count_of(met, n_held, "model") if n_held else "no model (no published bar applies)",
            "clean-unmet": "; ".join(unmet_all) or "none", "clean-table": md_table(rows)}


def _and(names: list[str]) -> str:
    return "" if not names else names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


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


def split_table(df: pd.DataFrame, stage: str, metric: str, target: str = "predicted") -> str:
    """At each model's largest ε, ``metric`` on fooled vs not-fooled images (and on fooled images with the ``clean``
    target, where run): a collapsed table with a row per (model, explainer, attack) and the word the intervals
    decide; an empty side (no image fooled, none resisted, blank maps) says why. The chapters' sentences count
    these comparisons over every ε (:func:`advxai.book.findings.split`)."""
    s = df[(df.stage == stage) & (df.metric == metric) & (df.attack != "none")]
    if s.empty:
        return NOT_RUN
    blank = df[(df.stage == stage) & (df.metric == "blank_pairs")]
    rows = []
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
            few_side = bool(f.n and nf.n and min(f.n, nf.n) < SPLIT_MIN)
            cl = _pick(ga, target="clean", subset="fooled")
            rows.append({"model": f"{d} · {m}", "explainer": x, "attack": a, "ε": f"{e:g}",
                         "fooled": fmt_n(f) if f.n else "—", "not fooled": fmt_n(nf) if nf.n else "—",
                         "fooled vs not fooled": word + (f" † (a side under {SPLIT_MIN} images)" if few_side else ""),
                         "fooled, clean-class map": fmt_n(cl.iloc[0]) if len(cl) and target != "clean" else "—"})
    if not rows:
        return NOT_RUN
    return collapsed(f"{metric} per (model, explainer, attack) at the largest ε, {len(rows)} rows, with intervals",
                     md_table(rows))


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
