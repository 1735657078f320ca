"""The study's answers across settings: a setting is one trained model (dataset × architecture × training seed).
Table II over seeds, and each detector's worst held-out AUROC over every setting of the detection stage: its median
and range, which group wins where, and whether an explanation-map detector reaches the goal anywhere.

A model's rows carry its label (``cnn`` for the config's seed, ``cnn·s1`` for an extra training seed:
:func:`advxai.runner.runs.model_label`); :func:`arch_seed` splits it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .detplots import GOAL, group_of, worst_held_out
from .grammar import CHANCE_STYLE, GOAL_STYLE, GROUP_COLOURS, group_colour

TABLE2 = ["accuracy", "balanced_accuracy", "auc"]


def arch_seed(label: str, base_seed: int = 0) -> tuple[str, int]:
    """``cnn·s1`` -> (``cnn``, 1); ``cnn`` -> (``cnn``, base_seed)."""
    arch, _, s = str(label).partition("·s")
    return arch, int(s) if s.isdigit() else base_seed


def load(dirs: list) -> tuple[pd.DataFrame, dict]:
    """:func:`advxai.measure.tables.load_runs` for a build whose RADAR-MIX part runs the same model twice, in pixel
    and in σ units (``radarmix`` as a list): :func:`run_rows`, then rows that still share every key column fail."""
    from ..measure import tables

    df, prov = run_rows(dirs)
    dup = tables.duplicates(df)
    if not dup.empty:
        raise AssertionError(f"{len(dup)} rows share all key columns:\n{dup.head()}")
    return df, prov


def run_rows(dirs: list) -> tuple[pd.DataFrame, dict]:
    """The finished runs' rows and provenance. The σ-unit RADAR-MIX run's rows that are not about a σ-unit attack —
    the clean images' classification and localisation, the explainers' seconds — measure the same images as the
    pixel run's (same draw, same seed) and are left out, so that every number keeps one row (also in
    ``results/tables/results.csv``, which the runner writes with this)."""
    import json
    from pathlib import Path

    from ..measure import tables

    dirs = [Path(d) for d in dirs if (Path(d) / "provenance.json").exists()]
    prov = {d.name: json.loads((d / "provenance.json").read_text()) for d in dirs}

    def units(d: Path) -> str | None:
        p = prov[d.name]
        return p["parameters"].get("eps_units") if p["stage"] == "radarmix" else None

    pixel = {d.name.rsplit("-", 1)[0] for d in dirs if units(d) == "pixel"}
    frames = []
    for d in dirs:
        if not (d / "metrics.csv").exists():
            continue
        f = pd.read_csv(d / "metrics.csv")
        u = units(d)
        if u not in (None, "pixel") and d.name.rsplit("-", 2)[0] in pixel:  # <label>-<units>-<key>
            f = f[f.attack.astype(str).str.contains("@", regex=False)]
        frames.append(f)
    df = pd.concat(frames, ignore_index=True) if frames else tables.frame([])
    return df, prov


def base_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of the config's own seed (models without a ``·s<seed>`` tail): what the per-model prose and
    figures narrate; the other seeds enter through :func:`seeds_table`, the detection aggregates and the
    reproduction verdicts."""
    return df[~df.model.astype(str).str.contains("·s", regex=False)]


def standard_detection(df: pd.DataFrame) -> pd.DataFrame:
    """The rows less the detection runs of adversarially trained models: the Detection chapter's settings are the
    standard models'; the Robust models chapter sets the others beside their standard twins (:mod:`.robust`)."""
    from .robust import standard_of

    return df[~((df.stage == "detection") & df.model.map(lambda m: standard_of(m) is not None))]


def tier(config: str, df: pd.DataFrame) -> dict[str, str]:
    """What this build is — the study, the quick version of it or another configuration (``tier``) — and what it
    holds, from its rows: its models and training seeds (``tier-models``) and its detection settings
    (``tier-settings``). The sentence is in ``book/intro.md``."""
    from .robust import standard_of

    archs = {arch_seed(m)[0] for m in df.model.dropna().unique() if m != "none"}
    models = sorted(a for a in archs if standard_of(a) is None)
    trained = df[df.stage == "train"].groupby(["dataset", "model"]).ngroups
    n_at = df[(df.stage == "train") & df.model.map(lambda m: standard_of(m) is not None)].groupby(
        ["dataset", "model"]).ngroups
    n_det = standard_detection(df).query("stage == 'detection'").groupby(["dataset", "model"]).ngroups
    seeds = int(df[df.stage == "seeds"].n.max()) if (df.stage == "seeds").any() else 1
    name = ("the study (make study, configs/study.yaml)" if config == "study" else
            "the quick version (make book)" if config == "default" else f"a build of configuration {config}")
    return {"tier": name,
            "tier-models": f"{trained - n_at} trained model{'s' * (trained - n_at != 1)} ({', '.join(models)}; "
                           f"{seeds} training seed"
                           f"{'s' * (seeds > 1)} each)" + (f" and {n_at} adversarially trained (one seed each)"
                                                            if n_at else ""),
            "tier-settings": f"{n_det} setting{'s' * (n_det != 1)}"}


def seeds_table(df: pd.DataFrame, base_seed: int = 0, subset: str = "test") -> pd.DataFrame:
    """Table II over training seeds: per (dataset, architecture) each metric's mean ± s.d. over seeds (the
    ``seeds`` stage) and each seed's value (its training run), on ``subset``. Empty without ``seeds`` rows."""
    sd = df[(df.stage == "seeds") & (df.subset == subset)].set_index(["dataset", "model", "metric"])
    if sd.empty:
        return pd.DataFrame()
    tr = df[(df.stage == "train") & (df.subset == subset) & df.metric.isin(TABLE2)].copy()
    tr[["arch", "train_seed"]] = [arch_seed(m, base_seed) for m in tr.model]
    rows = []
    for (d, arch), g in tr.groupby(["dataset", "arch"]):
        if (d, arch, "accuracy") not in sd.index:
            continue
        row = {"dataset": d, "architecture": arch, "seeds": int(sd.loc[(d, arch, "accuracy"), "n"])}
        for m in TABLE2:
            mean, s = sd.loc[(d, arch, m), "value"], sd.loc[(d, arch, f"{m}_sd"), "value"]
            per = g[g.metric == m].sort_values("train_seed")
            row[f"{m} (mean ± s.d.)"] = f"{mean:.3f} ± {s:.3f}"
            row[f"{m} per seed"] = ", ".join(f"{v:.3f}" for v in per.value)
        rows.append(row)
    return pd.DataFrame(rows)


def detection_settings(df: pd.DataFrame, base_seed: int = 0, standard: bool = True) -> pd.DataFrame:
    """One row per (setting, detector): its worst held-out AUROC (value, interval, the attack) and its worst
    held-out TPR at 5 % FPR, with the setting's dataset, architecture and training seed and the detector's group.
    ``standard``: the standard models' settings only (:func:`standard_detection`)."""
    det = (standard_detection(df) if standard else df).query("stage == 'detection'")
    out = []
    for (d, m), g in det.groupby(["dataset", "model"]):
        auroc, tpr = worst_held_out(g, "auroc"), worst_held_out(g, "tpr_at_5fpr").set_index("explainer")
        arch, seed = arch_seed(m, base_seed)
        for r in auroc.itertuples():
            out.append({"dataset": d, "model": m, "architecture": arch, "train_seed": seed, "detector": r.explainer,
                        "group": group_of(r.explainer), "auroc": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high,
                        "attack": r.attack, "tpr": tpr.value.get(r.explainer, np.nan)})
    return pd.DataFrame(out)


def setting_verdicts(s: pd.DataFrame) -> pd.DataFrame:
    """Per setting: the groups of the detectors tied for the highest worst held-out AUROC (intervals overlapping the
    best one: :func:`advxai.book.narrative.top_group`), the best explanation-map detector and the best other one,
    and whether the goal is met (:func:`advxai.book.detfacts.goal_met`, the definition every page uses)."""
    from .detfacts import goal_met
    from .narrative import top_group

    out = []
    for (d, m), g in s.groupby(["dataset", "model"]):
        rows = g.rename(columns={"auroc": "value", "detector": "name"}).set_index("name", drop=False)
        top, _ = top_group(rows, "name")
        ex, other = rows[rows.group == "explanation maps"], rows[rows.group != "explanation maps"]
        rec = {"dataset": d, "model": m, "top": top, "top_groups": sorted({rows.loc[t, "group"] for t in top}),
               "met": False, "explanation": None}
        if len(ex) and len(other):
            e, b = ex.loc[ex.value.idxmax()], other.loc[other.value.idxmax()]
            rec.update(explanation=e["name"], e_auroc=e.value, e_low=e.ci_low, e_high=e.ci_high, e_tpr=e.tpr,
                       other=b["name"], met=goal_met(e, pd.Series({"value": e.tpr}), b))
        out.append(rec)
    return pd.DataFrame(out)


def detector_summary(s: pd.DataFrame) -> pd.DataFrame:
    """Per detector over settings: its group, the median, minimum and maximum of its worst held-out AUROC, the
    settings it ran on, on how many it is tied for the best (intervals overlapping the best detector's), and on how
    many its own numbers pass the goal's thresholds (AUROC ≥ 0.98 and TPR at 5 % FPR ≥ 0.90); best median first."""
    tops = setting_verdicts(s).top.explode().value_counts()
    passes = s[(s.auroc >= GOAL["auroc"]) & (s.tpr >= GOAL["tpr_at_5fpr"])].detector.value_counts()
    g = s.groupby("detector")
    out = pd.DataFrame({"group": g.group.first(), "median": g.auroc.median(), "min": g.auroc.min(),
                        "max": g.auroc.max(), "settings": g.size()})
    out["tied for best on"] = tops.reindex(out.index).fillna(0).astype(int)
    out["passes the thresholds on"] = passes.reindex(out.index).fillna(0).astype(int)
    return out.sort_values("median", ascending=False)


def settings_figure(s: pd.DataFrame):
    """Each detector's worst held-out AUROC on every setting (one point per setting, shape by dataset, colour by
    the detector's group), its median as a bar, detectors by median; the goal and chance lines. ``None`` without
    rows."""
    import matplotlib.pyplot as plt

    if s.empty:
        return None
    summ = detector_summary(s).iloc[::-1]  # best median at the top
    y = {d: i for i, d in enumerate(summ.index)}
    markers = dict(zip(sorted(s.dataset.unique()), "osD^v", strict=False))
    fig, ax = plt.subplots(figsize=(10, 0.38 * len(y) + 1.6))
    jitter = np.random.default_rng(0).uniform(-0.22, 0.22, len(s))
    n = s.groupby(["dataset", "model"]).ngroups
    for (d, grp), g in s.groupby(["dataset", "group"]):
        idx = g.index.map(s.index.get_loc)
        yy = g.detector.map(y) + (jitter[idx] if n > 1 else 0)
        ax.errorbar(g.auroc, yy, xerr=np.clip([g.auroc - g.ci_low, g.ci_high - g.auroc], 0, None), fmt="none", lw=0.8,
                    ecolor=group_colour(grp), alpha=0.5)  # each point's 95 % interval
        ax.scatter(g.auroc, yy, marker=markers[d], s=22, alpha=0.85, color=group_colour(grp), edgecolor="none")
    if n > 1:
        ax.scatter(summ["median"], [y[d] for d in summ.index], marker="|", s=400, color="black", zorder=3)
    ax.axvline(GOAL["auroc"], **GOAL_STYLE)
    ax.axvline(0.5, **CHANCE_STYLE)
    ax.set_yticks(list(y.values()), list(y))
    what = "one point per setting, 95 % interval; bar: median" if n > 1 else "95 % interval"
    ax.set(xlim=(0, 1.02), xlabel=f"worst held-out AUROC ({what})",
           title=f"Detection on attacks never seen, {n} setting{'s' * (n > 1)}")
    from matplotlib.lines import Line2D

    handles = ([Line2D([], [], ls="", marker="o", color=c, label=grp) for grp, c in GROUP_COLOURS.items()
                if grp in set(s.group)]
               + [Line2D([], [], ls="", marker=mk, color="black", mfc="white", label=d) for d, mk in markers.items()]
               + [Line2D([], [], **GOAL_STYLE, label=f"goal {GOAL['auroc']:.2f}"),
                  Line2D([], [], color="black", ls=":", label="chance")])
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def answer_figure(df: pd.DataFrame, detection_dirs: list | None = None):
    """The detection answer as a forest plot: per setting, the paired held-out-family AUROC difference between the
    best explanation-map detector and the best other (rows ``auroc_diff``, target ``map_vs_other``) with its 95 %
    interval, and the pooled estimate over settings (:func:`advxai.book.abstract.pooled_answer`) as a diamond; a
    line at 0 (no difference). ``None`` without such rows."""
    import matplotlib.pyplot as plt

    from .abstract import pooled_answer

    d = standard_detection(df)
    d = d[(d.stage == "detection") & (d.metric == "auroc_diff")].sort_values(["dataset", "model"])
    if d.empty:
        return None
    pooled, _, n_pooled, _ = pooled_answer(detection_dirs or [])
    labels = [f"{r.dataset} · {r.model}\n({r.explainer})" for r in d.itertuples()]
    fig, ax = plt.subplots(figsize=(8, 0.55 * (len(d) + (pooled is not None)) + 1.4))
    y = np.arange(len(d))[::-1] + (pooled is not None)
    ax.errorbar(d.value, y, xerr=np.clip([d.value - d.ci_low, d.ci_high - d.value], 0, None), fmt="o",
                color="black", capsize=3)
    if pooled is not None:
        v, lo, hi = pooled
        ax.errorbar([v], [0], xerr=np.clip([[v - lo], [hi - v]], 0, None), fmt="D", ms=8, color="black",
                    mfc="white", capsize=4)
        labels.append(f"pooled over {n_pooled} setting{'s' * (n_pooled > 1)}")
    ax.axvline(0, **CHANCE_STYLE)
    ax.set_yticks(list(y) + ([0] if pooled is not None else []), labels, fontsize=8)
    ax.set(xlabel="held-out-family AUROC: best explanation-map detector minus best other (95 % interval)",
           title="Is the explanation the better alarm on attack families never seen?")
    ax.title.set_fontsize(10)
    fig.tight_layout()
    return fig


ONE_SEED = "*One training seed in this build; the study (`make study`) trains every model with three.*"
WORKED = ("pneumoniamnist_28", "cnn")  # the quick book's detection setting: the chapter's worked example


def family_table(df: pd.DataFrame, s: pd.DataFrame) -> pd.DataFrame:
    """Leave-one-*family*-out, per group: the group's best detector by median worst held-out AUROC (``s``,
    :func:`detection_settings`), and per attack family left out of its training, the median over settings of its
    worst AUROC on that family's cells (range in brackets) and of its TPR at 5 % FPR there. Empty where no grid
    spans two families."""
    from ..detect.protocol import family

    fam = df[(df.stage == "detection") & (df.target == "held_out_family")]
    if fam.empty or s.empty:
        return pd.DataFrame()
    fam = fam.assign(family=fam.attack.map(family))
    best = detector_summary(s).reset_index(names="detector").groupby("group", sort=False).first()
    rows = []
    for grp, b in best.iterrows():
        g = fam[fam.explainer == b.detector]
        row = {"detector (group)": f"{b.detector} ({grp})"}
        for f, gf in g.groupby("family", sort=False):
            per = {m: gf[gf.metric == m].groupby(["dataset", "model"]).value.min()
                   for m in ("auroc", "tpr_at_5fpr")}
            a, t = per["auroc"], per["tpr_at_5fpr"]
            spread = f" [{a.min():.2f}–{a.max():.2f}]" if len(a) > 1 else ""  # one setting: no range
            row[f"{f} left out"] = f"{a.median():.2f}{spread} / {t.median():.2f}" if len(a) and len(t) else "—"
        rows.append(row)
    return pd.DataFrame(rows).set_index("detector (group)")


def worked(df: pd.DataFrame) -> tuple[str, str] | None:
    """The chapter's worked detection setting: PneumoniaMNIST 28 px · cnn (the quick book's) when it ran, else the
    first (dataset, model) in order; ``None`` without detection rows."""
    keys = sorted(standard_detection(df).query("stage == 'detection'").groupby(["dataset", "model"]).groups)
    return None if not keys else WORKED if WORKED in keys else keys[0]


def one_setting(df: pd.DataFrame) -> pd.DataFrame:
    """The detection rows of the worked setting (:func:`worked`); the other stages' rows unchanged."""
    pick = worked(df)
    if pick is None:
        return df
    return df[(df.stage != "detection") | ((df.dataset == pick[0]) & (df.model == pick[1]))]


def detection_facts(df: pd.DataFrame, base_seed: int = 0) -> dict[str, str]:
    """Every ``det-*`` fact the detection chapter's sentences carry (:mod:`advxai.book.detfacts`): across settings,
    by family, the worked setting and the adaptive attack."""
    from . import detfacts, tramer
    from .narrative import adaptive_table

    df = standard_detection(df)
    s = detection_settings(df, base_seed)
    n = s.groupby(["dataset", "model"]).ngroups if len(s) else 0
    return {**detfacts.across(s), **detfacts.family(family_table(df, s), n), **detfacts.worked(one_setting(df)),
            **detfacts.adaptive(adaptive_table(df)), **detfacts.tramer(tramer.table(df))}


def detection_glue(df: pd.DataFrame, base_seed: int = 0, detection_dirs: list | None = None) -> dict:
    """What the detection chapter pastes besides its facts, by glue name: the answer and across-settings figures,
    the family table, the worked setting's tables (:func:`one_setting`) and one row per setting, the adaptive
    attack's figure and tables, the Tramèr table."""
    from IPython.display import HTML

    from . import detfacts, tramer
    from .detplots import adaptive_curves
    from .narrative import adaptive_table
    from .style import NO_FIGURE, collapsed, html, md_table

    df = standard_detection(df)
    s = detection_settings(df, base_seed)
    fam = family_table(df, s)
    worked_df = one_setting(df)
    shown = {"det-settings-fig": settings_figure(s), "det-answer-fig": answer_figure(df, detection_dirs),
             "det-adaptive-fig": adaptive_curves(worked_df)}
    rows = detfacts.settings_table(df)
    return {**{k: v if v is not None else html(NO_FIGURE) for k, v in shown.items()},
            "det-tramer-md": html(tramer.md(tramer.table(df))),
            "det-adaptive-tables": html(detfacts.adaptive_tables(adaptive_table(df))),
            "det-family-table": HTML(fam.to_html(classes="dataframe") if len(fam) else ""),
            "det-worked-tables": html(detfacts.worked_tables(worked_df)),
            "det-settings-table": html(collapsed(f"every setting's numbers, {len(rows)} row{'s' * (len(rows) != 1)}",
                                                 md_table(rows.to_dict("records"))))}


def worked_table(df: pd.DataFrame, detection_dirs: list, name: str) -> dict[str, pd.DataFrame]:
    """A table the worked setting's detection run saved (:func:`worked`, found by the run's parameters), by run
    label: its ROC curves (``roc.csv``) or its groups' score samples (``scores.csv``); one setting's on the
    chapter, the others on their run pages."""
    import json
    from pathlib import Path

    pick = worked(df)
    out = {}
    for d in map(Path, detection_dirs):
        if pick is None or not (d / name).exists():
            continue
        p = json.loads((d / "provenance.json").read_text())["parameters"]
        if (f"{p['dataset']}_{p['size']}", p["model"]) == pick:
            out[d.name.rsplit("-", 1)[0]] = pd.read_csv(d / name)
    return out
