"""The reproduction report: each claim of the two seed papers against our numbers on a cell declared here
(never the best cell of the grid), with two verdicts: *same setting?* (model family, resolution, ImageNet
pretraining, data) and *holds here?* — the claim tested on the nearest setting the configuration ran, over every
trained model there (architectures and training seeds), from the seed's value and each model's 95 % interval.

Our rows are found by dataset *family* (``chest_xray`` at any size), so the CPU default (64 px) and the paper
configurations (224 px) are read alike. One report row per claim, over every trained model: no model is picked
arbitrarily. Verdicts:

* ``yes`` — the seed's value (or range) lies in our interval; ``partially`` — it misses by ≤ ``tolerance``;
  ``no (ours higher|lower)`` — further;
* *holds here?* aggregates the models' verdicts (:func:`holds`): ``holds`` (every model *yes*), ``near miss``
  (every model *partially*), ``does not hold`` (every model *no*), ``undecided`` (no model's interval decides),
  ``mixed``; a setting that differs from the seed's is said in *same setting?*, never instead of a verdict;
* ``not run`` — the configuration has no such cell.

A ranking claim ("DeepFool has the strongest fooling rate") holds when the named attack's interval lies above
every other attack's at the declared ε, is ``indistinguishable`` when it overlaps the best, ``no`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

GRAD_ATTACKS_SETTING = {"models": ("resnet50", "vgg16", "inceptionv3"), "size": 224, "pretrained": True}
RADARMIX_SETTING = {"models": ("resnet50v2", "vgg16", "vgg19", "inceptionv3", "densenet201", "efficientnetb0"),
                    "size": 224, "pretrained": True}
MEDMNIST_SETTING = {"models": None, "size": 28, "pretrained": False}  # the benchmark anchors the 28 px pipeline


@dataclass(frozen=True)
class Claim:
    study: str
    claim: str
    seed: tuple[float, float]  # (low, high) as a share in [0, 1]; a single number has low == high
    dataset: str  # dataset family (name without size)
    cell: dict  # the other columns that pick our row: stage, metric, subset, attack, eps, explainer, target
    setting: dict = field(default_factory=lambda: GRAD_ATTACKS_SETTING)
    note: str = ""
    tolerance: float = 0.05
    missing: str = "not in the configuration that was run"


@dataclass(frozen=True)
class Ranking:
    study: str
    claim: str
    attack: str  # the attack claimed strongest
    dataset: str
    cell: dict  # stage, metric, subset, eps
    setting: dict = field(default_factory=lambda: GRAD_ATTACKS_SETTING)
    note: str = ""


CLAIMS = [
    Claim("Grad-Attacks", "clean accuracy on chest X-ray 85.9–88.9 %", (0.859, 0.889), "chest_xray",
          {"stage": "train", "metric": "accuracy", "subset": "test"}),
    Claim("Grad-Attacks", "fooling rate up to 93 % (DeepFool, chest X-ray; all attacked images, ε 0.1)",
          (0.93, 0.93), "chest_xray",
          {"stage": "attack", "metric": "flip_rate", "subset": "attacked", "attack": "deepfool", "eps": 0.1},
          note="the seed's measure: label changes over all attacked images (`flip_rate`)"),
    Claim("Grad-Attacks", "the same, as a fooling rate over correctly classified images", (0.93, 0.93),
          "chest_xray",
          {"stage": "attack", "metric": "fooling_rate", "subset": "correct", "attack": "deepfool", "eps": 0.1},
          note="the standard definition (`fooling_rate` on `correct`)"),
    Claim("Grad-Attacks", "fooling rate up to 96 % (PGD, OCT; all attacked images, ε 0.1)", (0.96, 0.96),
          "oct2017", {"stage": "attack", "metric": "flip_rate", "subset": "attacked", "attack": "pgd", "eps": 0.1},
          missing="OCT2017 train/test are not in the shared data (only its 32-image val split); a user download"),
    Claim("MedMNIST v2", "PneumoniaMNIST benchmark accuracy 85.4 % (ResNet-18, 28 px)", (0.854, 0.854),
          "pneumoniamnist", {"stage": "train", "metric": "accuracy", "subset": "test"}, setting=MEDMNIST_SETTING,
          note="MedMNIST's benchmark, our sanity anchor for the 28 px pipeline"),
    Claim("RADAR-MIX", "clean test accuracy 75.0 % (ResNet50V2, ISIC 2018)", (0.75, 0.75), "isic2018",
          {"stage": "train", "metric": "accuracy", "subset": "test"}, setting=RADARMIX_SETTING),
    Claim("RADAR-MIX", "explanations detect attacks (read: AUROC ≥ 0.9; held-out PGD, ε 0.05, outputs + "
          "explanations)", (0.9, 1.0), "isic2018",
          {"stage": "detection", "metric": "auroc", "attack": "pgd", "eps": 0.05, "target": "held_out",
           "explainer": "outputs+explanations"}, setting=RADARMIX_SETTING, tolerance=0.0,
          note="ours: a single-input detector on an attack it never saw; the seed compared clean and attacked "
               "maps of the same image",
          missing="the detection study of this configuration does not include isic2018 (`detection.datasets`)"),
]
RANKINGS = [
    Ranking("Grad-Attacks", "DeepFool has the strongest fooling rate (chest X-ray, ε 0.1, all attacked images)",
            "deepfool", "chest_xray", {"stage": "attack", "metric": "flip_rate", "subset": "attacked", "eps": 0.1},
            note="the seed's denominator: an already-wrong image that DeepFool flips back counts as fooled"),
    Ranking("Grad-Attacks", "… re-examined over the correctly classified images only", "deepfool", "chest_xray",
            {"stage": "attack", "metric": "fooling_rate", "subset": "correct", "eps": 0.1},
            note="the standard denominator"),
]


def pretrained(provenance: dict[str, dict]) -> dict[tuple[str, str], bool]:
    """``(dataset, model) -> whether it started from ImageNet weights``, from the training runs' parameters."""
    out = {}
    for p in provenance.values():
        if p["stage"] == "train":
            q = p["parameters"]
            out[(f"{q['dataset']}_{q['size']}", q.get("model_label") or q["model"])] = \
                q.get("model_params", {}).get("weights") == "imagenet"
    return out


def _family(dataset: str) -> tuple[str, int]:
    name, _, size = str(dataset).rpartition("_")
    return (name, int(size)) if size.isdigit() else (str(dataset), 0)


def _rows(df: pd.DataFrame, family: str, cell: dict) -> pd.DataFrame:
    from .robust import standard_of

    fam = df.dataset.map(lambda d: _family(d)[0])
    # the seeds' claims are about standard training: adversarially trained models (``cnn-at2``) are the
    # Robust models chapter's, not a model the claim was made for
    sel = df[(fam == family) & df.model.map(standard_of).isna()]
    for col, val in cell.items():
        sel = sel[np.isclose(sel[col], val)] if col == "eps" else sel[sel[col] == val]
    return sel.dropna(subset=["value"])


def _differences(setting: dict, dataset: str, model: str, pretrained: bool) -> list[str]:
    """What differs between the seed's setting and the row's (empty: comparable)."""
    from .aggregate import arch_seed

    size, model = _family(dataset)[1], arch_seed(model)[0]  # every seed of an architecture differs alike
    why = []
    if setting["models"] is not None and model not in setting["models"]:
        why.append(f"{model}, seed {'/'.join(setting['models'])}")
    if size != setting["size"]:
        why.append(f"{size} px, seed {setting['size']}")
    if setting["pretrained"] and not pretrained:
        why.append("from scratch, seed ImageNet")
    return why


def verdict(seed: tuple[float, float], ci: tuple[float, float], tolerance: float) -> str:
    """``yes`` if the seed's range and our interval overlap, ``partially`` if they miss by ≤ tolerance, else
    ``no``; a miss says on which side our number lies (``no (ours higher)``)."""
    lo, hi = ci
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "no interval"
    gap = max(seed[0] - hi, lo - seed[1], 0.0)
    if gap == 0:
        return "yes"
    side = "ours higher" if lo > seed[1] else "ours lower"
    return f"{'partially' if gap <= tolerance else 'no'} ({side})"


def with_seed_variance(df: pd.DataFrame, r) -> tuple[tuple[float, float], str]:
    """The interval a verdict on row ``r`` uses: its own 95 % interval, widened to cover mean ± 2 s.d. over
    training seeds when the ``seeds`` stage ran for its architecture (test images *and* training runs vary)."""
    from .aggregate import arch_seed

    ci = (r.ci_low, r.ci_high)
    arch = arch_seed(r.model)[0]  # every seed's model of an architecture is widened alike
    sel = df[(df.stage == "seeds") & (df.dataset == r.dataset) & (df.model == arch) & (df.subset == r.subset)]
    sel = sel.set_index("metric")
    if f"{r.metric}_sd" not in sel.index or not np.isfinite(sel.loc[f"{r.metric}_sd", "value"]):
        return ci, ""
    mean, sd = sel.loc[r.metric, "value"], sel.loc[f"{r.metric}_sd", "value"]
    k = int(sel.loc[r.metric, "n"])
    lo, hi = min(ci[0], mean - 2 * sd), max(ci[1], mean + 2 * sd)
    return (lo, hi), f"; {k} training seeds: {_pct(mean)} ± {100 * sd:.1f} s.d. (verdict on [{_pct(lo)}, {_pct(hi)}])"


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def _ours(r) -> str:
    ci = f" [{100 * r.ci_low:.1f}, {100 * r.ci_high:.1f}]" if np.isfinite(r.ci_low) else ""
    return f"{_pct(r.value)}{ci} (n = {int(r.n)})"


def _claim_rows(df: pd.DataFrame, c: Claim, pretrained: dict) -> list[dict]:
    """Per trained model holding the claim's cell: our number, what differs from the seed's setting, the verdict."""
    out = []
    for r in _rows(df, c.dataset, c.cell).itertuples():
        ci, seeds_note = with_seed_variance(df, r)
        out.append({"on": f"{r.dataset} · {r.model}", "ours": _ours(r) + seeds_note, "value": r.value,
                    "diff": _differences(c.setting, r.dataset, r.model, pretrained.get((r.dataset, r.model), False)),
                    "verdict": verdict(c.seed, ci, c.tolerance)})
    return out


def _ranking_rows(df: pd.DataFrame, k: Ranking, pretrained: dict) -> list[dict]:
    """Per trained model: the named attack against the best other, and the verdict from their intervals."""
    out = []
    rows = _rows(df, k.dataset, k.cell)
    for (d, m), g in rows.groupby(["dataset", "model"]):
        named, others = g[g.attack == k.attack], g[g.attack != k.attack]
        if named.empty or others.empty:
            continue
        named, best_other = named.iloc[0], others.loc[others.value.idxmax()]
        if not np.isfinite(named.ci_low) or not np.isfinite(others.ci_low).all():
            v = "no interval"
        elif named.ci_low > others.ci_high.max():
            v = "yes"
        elif named.ci_high >= best_other.ci_low:
            v = f"indistinguishable from {best_other.attack}"
        else:
            v = f"no ({best_other.attack} higher)"
        out.append({"on": f"{d} · {m}", "ours": f"{k.attack} {_ours(named)}; best other: {best_other.attack} "
                                                 f"{_ours(best_other)}", "value": named.value,
                    "diff": _differences(k.setting, d, m, pretrained.get((d, m), False)), "verdict": v})
    return out


def holds(verdicts: list[str]) -> str:
    """*holds here?* over every trained model of the nearest setting, from each model's verdict: ``holds`` when
    every model says *yes*, ``does not hold`` when every model says *no*, ``near miss`` when every model misses by
    at most the tolerance (*partially*), ``undecided`` when no model's interval can decide (*indistinguishable*,
    *no interval*); otherwise ``mixed`` with the count of each. A shared side (ours higher / lower) is said."""
    n = len(verdicts)
    kinds = {"holds": [v for v in verdicts if v == "yes"],
             "near miss": [v for v in verdicts if v.startswith("partially")],
             "does not hold": [v for v in verdicts if v.startswith("no (")]}
    kinds["undecided"] = [v for v in verdicts if not any(v in k for k in kinds.values())]
    for name, vs in kinds.items():
        if len(vs) == n:
            sides = {v[v.find("(") + 1:v.find(")")] for v in vs if "(" in v}
            return f"{name} ({n} of {n} models" + (f"; {sides.pop()})" if len(sides) == 1 else ")")
    return "mixed (" + ", ".join(f"{name} on {len(vs)}" for name, vs in kinds.items() if vs) + f" of {n} models)"


def same_setting(diffs: list[list[str]]) -> str:
    """*same setting?*: ``yes`` when no model differs from the seed's setting, else ``no`` and what differs."""
    items = list(dict.fromkeys(d for diff in diffs for d in diff))
    return "yes" if not items else "no: " + "; ".join(items)


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{summary}</summary>{body}</details>" if body else summary


def report(df: pd.DataFrame, pretrained: dict[tuple[str, str], bool] | None = None) -> pd.DataFrame:
    """One row per claim: study, claim, the seed's number, ours (range over the trained models of the nearest
    setting; each model's number and interval collapsed under it), *same setting?*, *holds here?*, and why.
    ``pretrained[(dataset, model)]`` says whether that model started from ImageNet weights (default: no)."""
    pretrained = pretrained or {}
    out = []
    items = [(c, _pct(c.seed[0]) if c.seed[0] == c.seed[1] else f"{_pct(c.seed[0])}–{_pct(c.seed[1])}",
              _claim_rows(df, c, pretrained), c.missing) for c in CLAIMS]
    items += [(k, "strongest", _ranking_rows(df, k, pretrained), "not in the configuration that was run")
              for k in RANKINGS]
    for c, seed, rows, missing in items:
        if not rows:
            out.append({"study": c.study, "claim": c.claim, "seed": seed, "ours": "—", "same setting?": "—",
                        "holds here?": "not run", "why": missing})
            continue
        lo, hi = min(r["value"] for r in rows), max(r["value"] for r in rows)
        span = _pct(lo) if np.isclose(lo, hi) else f"{_pct(lo)}–{_pct(hi)}"
        each = "<br>".join(f"{r['on']}: {r['ours']} — {r['verdict']}" for r in rows)
        out.append({"study": c.study, "claim": c.claim, "seed": seed,
                    "ours": _details(f"{span} over {len(rows)} model{'s' * (len(rows) > 1)}", each),
                    "same setting?": same_setting([r["diff"] for r in rows]),
                    "holds here?": holds([r["verdict"] for r in rows]), "why": c.note})
    return pd.DataFrame(out)


def styled(repro: pd.DataFrame):
    """The report as the chapter shows it: the verdict table first, each model's numbers and the reasons
    collapsed in their cells."""
    pd.set_option("display.max_colwidth", None)  # claims and reasons in full
    shown = repro.assign(why=[_details("why", w) if w else "" for w in repro.why])
    return (shown.style.hide(axis="index")
            .set_properties(**{"font-size": "0.8em", "vertical-align": "top", "white-space": "normal"})
            .set_properties(subset=["claim"], **{"min-width": "14em"})
            .set_properties(subset=["ours", "same setting?", "holds here?"], **{"min-width": "9em"}))
