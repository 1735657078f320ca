"""The Robust models chapter, from the result table: RobustBench's leaderboard rows, each adversarially trained model
beside its standard twin (same dataset and architecture, ``cnn-at2`` beside ``cnn``), the alignment of input
gradients with the image, and the chapter's opening findings. Comparisons use the intervals (:func:`compare`)."""

from __future__ import annotations

import re

import pandas as pd

from .narrative import NOT_RUN, collapsed, compare, fmt, fmt_n, md_table

ENSEMBLE = "autoattack-nofab"
_AT = re.compile(r"^(?P<arch>.+)-at(?P<eps>[\d.]+)$")


def standard_of(model: str) -> str | None:
    """The standard twin of an adversarially trained model's label (``cnn-at2`` -> ``cnn``), else None."""
    m = _AT.match(str(model))
    return m["arch"] if m else None


def _span(values, spec: str) -> str:
    lo, hi = format(min(values), spec), format(max(values), spec)
    return lo if lo == hi else f"{lo}–{hi}"


def _k255(eps: float) -> str:
    return f"{eps * 255:.3g}/255"


def robustbench_md(df: pd.DataFrame) -> str:
    """RobustBench's leaderboard columns, one row per (dataset, model, attack, ε), collapsed under one sentence."""
    rb = df[df.stage == "robust"]
    if rb.empty:
        return NOT_RUN
    clean = {(r.dataset, r.model): fmt_n(r) for r in rb[rb.metric == "clean_accuracy"].itertuples()}
    rows = [{"dataset": r.dataset, "model": r.model, "clean accuracy": clean.get((r.dataset, r.model), "—"),
             "attack": r.attack, "ε": _k255(r.eps), "robust accuracy": fmt(r), "threat model": "L∞", "n": int(r.n)}
            for r in rb[rb.metric == "robust_accuracy"].sort_values(["dataset", "model", "attack", "eps"]).itertuples()]
    n = rb.groupby(["dataset", "model"]).ngroups
    return (f"Accuracy under attack of {n} model{'s' * (n > 1)} on a class-balanced sample of each test split, "
            f"in RobustBench's columns:\n\n" + collapsed(f"robust accuracy, {len(rows)} rows", md_table(rows)))


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


def pairs_md(df: pd.DataFrame) -> str:
    """Standard vs adversarially trained, a row per (dataset, architecture, ε): robust accuracy under the ensemble
    of both and the test accuracy each pays, with one sentence counting where adversarial training helped."""
    p = pairs(df)
    if p.empty:
        return "*No adversarially trained model in this build (the study trains them: `make study`).*"
    rows = []
    for r in p.itertuples():
        a, s = _test_accuracy(df, r.dataset, r.model), _test_accuracy(df, r.dataset, r.standard)
        rows.append({"dataset": r.dataset, "models": f"{r.model} vs {r.standard}", "ε": _k255(r.eps),
                     "robust accuracy, AT": fmt(r.at), "robust accuracy, standard": fmt(r.std),
                     "AT vs standard": r.word,
                     "test accuracy, AT / standard": f"{fmt(a) if a is not None else '—'} / "
                                                     f"{fmt(s) if s is not None else '—'}"})
    higher = int((p.word == "higher than").sum())
    return (f"Adversarial training kept more images correct under the ensemble in {higher} of {len(p)} "
            f"(model, ε) cells, intervals apart; the table gives each cell and the clean test accuracy both "
            f"models pay:\n\n" + collapsed(f"standard vs adversarially trained, {len(rows)} row{'s' * (len(rows) > 1)}",
                         md_table(rows)))


def alignment_md(df: pd.DataFrame) -> str:
    """The alignment |⟨∇ₓ z_y, x⟩| / (‖∇ₓ z_y‖ ‖x‖) per model, and how each AT model's compares with its twin's."""
    al = df[(df.stage == "robust") & (df.metric == "gradient_alignment")]
    if al.empty:
        return NOT_RUN
    rows = [{"dataset": r.dataset, "model": r.model, "alignment": fmt_n(r, 3)} for r in al.itertuples()]
    words = []
    for r in al.itertuples():
        std = standard_of(r.model)
        twin = al[(al.dataset == r.dataset) & (al.model == std)] if std else al.iloc[:0]
        if len(twin):
            words.append(f"{r.model} {compare(r, twin.iloc[0])} {std} on {r.dataset}")
    said = ("; ".join(words) + ". ") if words else ""
    return said + collapsed(f"alignment of the input gradient with the image, {len(rows)} models", md_table(rows))


def findings(df: pd.DataFrame) -> str:
    """The chapter's opening findings: what the ensemble leaves at the largest ε on standard models, whether it
    is at least as strong as PGD, and what adversarial training bought."""
    rb = df[(df.stage == "robust") & (df.metric == "robust_accuracy")]
    if rb.empty:
        return NOT_RUN
    claims = []
    ens = rb[rb.attack == ENSEMBLE]
    std = ens[ens.model.map(standard_of).isna()]
    if len(std):
        top = std[std.eps == std.eps.max()]
        claims.append(f"At ε = {_k255(top.eps.iloc[0])}, the ensemble left {_span(top.value, '.2f')} of the sample "
                      f"correct on the {len(top)} standard model{'s' * (len(top) > 1)} "
                      f"(n = {_span(top.n, '.0f')} images each).")
    pgd = rb[rb.attack == "pgd"].set_index(["dataset", "model", "eps"])
    both = ens.set_index(["dataset", "model", "eps"]).join(pgd, rsuffix="_pgd", how="inner")
    if len(both):
        lower = int((both.ci_high < both.ci_low_pgd).sum())
        above = int((both.value > both.value_pgd).sum())
        claims.append(f"The ensemble's robust accuracy was at or below PGD's in {len(both) - above} of {len(both)} "
                      f"(model, ε) cells and below it, intervals apart, in {lower}.")
    p = pairs(df)
    if len(p):
        claims.append(f"Adversarial training kept more images correct under the ensemble in "
                      f"{int((p.word == 'higher than').sum())} of {len(p)} (model, ε) cells, intervals apart.")
    return "\n".join(f"- {c}" for c in claims)


def saliency_figure(robust_dirs: list):
    """The input-gradient maps of every model of one dataset side by side on the same seeded test images (the
    dataset with the most models, adversarially trained ones included), or a sentence where no run saved them."""
    import json
    from pathlib import Path

    from IPython.display import HTML

    from .. import artefacts
    from .figures import saliency_grid

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


def glue_items(df: pd.DataFrame, robust_dirs: list) -> dict:
    """The chapter's pasted parts by glue name: findings, RobustBench rows, AT vs standard, alignment, figures."""
    from .figures import robust_accuracy
    from .narrative import html

    fig = robust_accuracy(df)
    return {"rb-findings": html(findings(df)), "rb-table-md": html(robustbench_md(df)),
            "rb-pairs-md": html(pairs_md(df)), "rb-align-md": html(alignment_md(df)),
            "rb-fig": fig if fig is not None else html(NOT_RUN), "rb-saliency-fig": saliency_figure(robust_dirs)}
