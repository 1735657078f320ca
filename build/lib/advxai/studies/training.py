"""The training run's evaluation, one function per step of notebooks/01_train.ipynb: Table II rows on the test and
validation splits, and what the class weighting does to each class (the decision an unweighted loss would make)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..measure import evaluation, tables
from ..measure import metrics as M
from ..models import benchmarks, train


def evaluate_splits(net, ds, seconds: float, n_boot: int, seed: int, key: dict):
    """``(logits, rows)``: the logits of the test and validation splits, and their classification rows with
    intervals, the majority-class baseline of each, and the training time."""
    splits = {s: ds.split(s) for s in ("test", "val")}
    logits = {s: train.predict_logits(net, x) for s, (x, _) in splits.items()}
    rows = [r for s, (_, y) in splits.items()
            for r in evaluation.classification_rows(y, M.softmax(logits[s]), n_boot, seed, **{**key, "subset": s})]
    rows += [tables.row("majority_baseline", benchmarks.majority_share(y), n=len(y), **{**key, "subset": s})
             for s, (_, y) in splits.items()]
    rows.append(tables.row("seconds", seconds, n=len(ds.split("train")[1]), **key))
    return logits, rows


def weighting_tradeoff(ds, test_logits: np.ndarray, balance):
    """What the class-weighted loss does, without retraining (logit adjustment, Menon et al. 2021): ``(trade,
    recall, cm)`` — accuracy, balanced accuracy and AUC as trained and with the weighting undone; per class its
    counts, loss weight and recall both ways; the test confusion matrix."""
    y_trn, y_te = ds.split("train")[1], ds.split("test")[1]
    w = train.class_weights(y_trn, ds.n_classes, train.balance_power(balance))
    decisions = {"as trained": test_logits, "weighting undone": train.reweighted_logits(test_logits, w)}
    trade = pd.DataFrame({name: M.classification_metrics(y_te, M.softmax(lg)) for name, lg in decisions.items()}).T
    cm = M.confusion(y_te, test_logits.argmax(1), ds.n_classes)
    undone = decisions["weighting undone"].argmax(1)
    recall = pd.DataFrame({"train images": np.bincount(y_trn, minlength=ds.n_classes),
                           "loss weight": [w[k] for k in range(ds.n_classes)], "test images": cm.sum(1),
                           "recall as trained": np.diag(cm) / np.maximum(cm.sum(1), 1),
                           "recall, weighting undone": [np.mean(undone[y_te == k] == k) if np.any(y_te == k)
                                                        else np.nan for k in range(ds.n_classes)]},
                          index=ds.labels)
    return trade[["accuracy", "balanced_accuracy", "auc"]], recall, cm


def training_records(train_dirs: list) -> list[dict]:
    """The Table II metrics of finished training runs (notebooks/08_seeds.ipynb), one record per (training seed,
    subset, metric): each run's ``metrics.csv`` rows on the test and validation splits, with the seed its
    ``provenance.json`` recorded."""
    import json
    from pathlib import Path

    out = []
    for d in map(Path, train_dirs):
        seed = json.loads((d / "provenance.json").read_text())["parameters"]["seed"]
        df = pd.read_csv(d / "metrics.csv")
        df = df[df.subset.isin(["test", "val"]) & df.metric.isin(evaluation.CLASSIFICATION)]
        out += [{"seed": int(seed), "subset": r.subset, "metric": r.metric, "value": float(r.value)}
                for r in df.itertuples()]
    return out
