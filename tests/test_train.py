"""The training recipe: class weights and their undoing, augmentation per modality, schedules and early-stopping
monitors, settings checked before any work, and the benchmark bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advxai import models
from advxai.errors import ParameterError, UnknownNameError
from advxai.models import augment, benchmarks, train
from advxai.runner.config import load_config


def test_class_weights_powers_by_hand():
    y = np.array([0] * 6 + [1] * 2)  # n = 8, K = 2: balanced weights 8/12 and 8/4
    assert train.class_weights(y, 2) == pytest.approx({0: 2 / 3, 1: 2.0})
    assert train.class_weights(y, 2, 0.5) == pytest.approx({0: (2 / 3) ** 0.5, 1: 2 ** 0.5})
    assert train.balance_power("sqrt") == 0.5 and train.balance_power(False) == 0.0
    # 2 of 40 images in class 1: balanced weight 40/4 = 10 > 5, so the power becomes ln 5 / ln 10 and that
    # weight exactly 5, the other (40/76)^0.699
    y = np.array([0] * 38 + [1] * 2)
    p = np.log(5) / np.log(10)
    assert train.class_weights(y, 2) == pytest.approx({0: (40 / 76) ** p, 1: 5.0})
    assert train.class_weights(y, 2, 0.5) == pytest.approx({0: (40 / 76) ** 0.5, 1: 10 ** 0.5})  # under the cap
    with pytest.raises(ParameterError, match="balance must be"):
        train.balance_power("squareroot")


def test_reweighted_logits_undo_the_weighting_by_hand():
    # weights 2 and 0.5: the trained model favours class 0 by log 2 - log 0.5 = log 4 over the unweighted one
    out = train.reweighted_logits(np.array([[1.0, 0.0], [0.0, 0.0]]), {0: 2.0, 1: 0.5})
    assert out == pytest.approx(np.array([[1 - np.log(2), np.log(2)], [-np.log(2), np.log(2)]]))
    assert out.argmax(1).tolist() == [1, 1]  # 1 - log 2 < log 2: the first image's decision flips


def test_augmentation_per_modality():
    assert train.augmentation_for("isic2018", True) == "dermoscopy"
    assert train.augmentation_for("chest_xray", True) == "anatomical"
    assert train.augmentation_for("chest_xray", False) is None
    assert train.augmentation_for("pathmnist", "anatomical") == "anatomical"
    with pytest.raises(UnknownNameError, match="known: anatomical, anatomical-legacy, dermoscopy"):
        train.augmentation_for("isic2018", "flips")
    assert isinstance(train.AUGMENTATIONS["dermoscopy"](0), augment.Dermoscopy)  # flips and transposes
    assert "RandomFlip" not in [type(layer).__name__ for layer in train.AUGMENTATIONS["anatomical"](0).layers]


@pytest.mark.parametrize("bad, match", [({"schedule": "cosin"}, "unknown schedule 'cosin'"),
                                        ({"monitor": "val_acc"}, "unknown monitor"),
                                        ({"warmup": 15}, "warmup must be in"),
                                        ({"label_smoothing": 1.0}, "label_smoothing"),
                                        ({"augment": "flipz"}, "unknown augmentation"),
                                        ({"adversarial": {"eps": 2}}, r"adversarial.eps must be at most 1, got 2"),
                                        ({"adversarial": {"eps": 0.01, "stpes": 3}}, "did you mean 'steps'"),
                                        ({"adversarial": 0.01}, "adversarial must be a mapping")])
def test_train_settings_fail_at_config_time(tmp_path, bad, match):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"datasets: [pneumoniamnist]\ntrain: {bad!r}\n".replace("'", '"'))
    with pytest.raises((ParameterError, UnknownNameError), match=match):
        load_config(cfg)


def test_cosine_without_early_stopping_keeps_the_last_epoch_and_saves_no_augmentation(pneumonia):
    x, y = pneumonia.split("train")
    xv, yv = pneumonia.split("val")
    net = models.build("cnn", pneumonia.input_shape, 2, width=4, seed=0)
    hist = train.fit(net, x[:512], y[:512], xv[:128], yv[:128], epochs=2, batch_size=128, schedule="cosine",
                     warmup=1, weight_decay=1e-4, label_smoothing=0.1, monitor="none", augment="anatomical",
                     balance="sqrt", verbose=0)
    assert hist["best_epoch"] == 2 and len(hist["loss"]) == 2
    assert len(hist["val_balanced_accuracy"]) == 2 and all(0 <= v <= 1 for v in hist["val_balanced_accuracy"])
    assert not any(type(layer).__name__.startswith("Random") for layer in net.layers)  # the wrapper is not saved
    assert net.input_shape[1:] == pneumonia.input_shape


def test_benchmark_bars_verdicts():
    rows = pd.DataFrame([
        {"metric": "accuracy", "subset": "test", "value": 0.70, "ci_low": 0.67, "ci_high": 0.72},
        {"metric": "balanced_accuracy", "subset": "test", "value": 0.48, "ci_low": 0.45, "ci_high": 0.52},
        {"metric": "auc", "subset": "test", "value": 0.85, "ci_low": 0.83, "ci_high": 0.87},
        {"metric": "accuracy", "subset": "val", "value": 0.75, "ci_low": 0.72, "ci_high": 0.78},
    ])
    out = benchmarks.check("isic2018", 28, rows, {"test": 0.601, "val": 0.67}).set_index(["metric", "split"])
    assert out.loc[("accuracy", "test"), "bar"] == 0.601 and out.loc[("accuracy", "test"), "met"] == "yes"
    assert out.loc[("balanced_accuracy", "test"), "met"] == "within interval"
    assert out.loc[("auc", "test"), "met"] == "no"
    assert out.loc[("accuracy", "val"), "met"] == "yes"
    assert ("auc", "val") not in out.index  # no val AUC row given: no verdict invented
    assert benchmarks.check("pneumoniamnist", 64, rows, {}).empty  # MedMNIST bars are for 28 px only


def test_seed_rows_mean_and_sd_by_hand():
    from advxai.measure import evaluation

    recs = [{"seed": s, "subset": "test", "metric": "accuracy", "value": v} for s, v in [(0, 0.8), (1, 0.9), (2, 0.7)]]
    rows = {r["metric"]: r for r in evaluation.seed_rows(recs, stage="seeds", dataset="d_28", model="cnn")}
    assert rows["accuracy"]["value"] == pytest.approx(0.8) and rows["accuracy"]["n"] == 3
    assert rows["accuracy_sd"]["value"] == pytest.approx(0.1)  # sample s.d. of 0.8, 0.9, 0.7
    assert np.isnan(rows["accuracy"]["ci_low"])  # seeds are not a sample of images: no interval


def test_reproduction_verdict_widened_by_seed_variance():
    from advxai.book import reproduction

    base = {"dataset": "chest_xray_64", "model": "cnn", "subset": "test", "attack": "none", "eps": 0.0,
            "explainer": "none", "target": "none"}
    df = pd.DataFrame([
        {**base, "stage": "train", "metric": "accuracy", "value": 0.80, "ci_low": 0.77, "ci_high": 0.83, "n": 624},
        {**base, "stage": "seeds", "metric": "accuracy", "value": 0.82, "ci_low": np.nan, "ci_high": np.nan, "n": 3},
        {**base, "stage": "seeds", "metric": "accuracy_sd", "value": 0.02, "ci_low": np.nan, "ci_high": np.nan,
         "n": 3}])
    r = next(df[df.stage == "train"].itertuples())
    ci, note = reproduction.with_seed_variance(df, r)
    assert ci == pytest.approx((0.77, 0.86)) and "3 training seeds" in note  # 0.82 + 2 × 0.02 = 0.86 > 0.83
    assert reproduction.with_seed_variance(df[df.stage == "train"], r) == ((0.77, 0.83), "")


def test_seeds_config_extends_the_default_and_plans_one_seeds_run_per_model(tmp_path):
    """Each extra seed is a training run of its own (label ``-s<seed>``, rows ``cnn·s<seed>``); the seeds run
    collects a model's training runs; with ``per_seed`` empty nothing downstream runs on the extra models."""
    from advxai.runner.runs import plan

    root = Path(__file__).resolve().parents[1] / "configs"
    cfg, base = load_config(root / "seeds.yaml"), load_config(root / "default.yaml")
    assert cfg["seeds"] == [1, 2] and cfg["name"] == "seeds" and cfg["attack"] == base["attack"]
    runs, default_runs = plan(cfg, tmp_path), plan(base, tmp_path)
    trains = [r for r in runs if r.stage == "train"]
    seeds = [r for r in runs if r.stage == "seeds"]
    base_trains = [t for t in trains if "model_label" not in t.params]
    assert len(seeds) == len(base_trains) and len(trains) == 3 * len(base_trains)
    assert all([d.params["seed"] for d in s.deps] == [0, 1, 2] for s in seeds)
    assert {t.params["model_label"] for t in trains if t not in base_trains} >= {"cnn·s1", "cnn·s2"}
    assert {t.key for t in base_trains} == {r.key for r in default_runs if r.stage == "train"}  # cached runs reused
    extra = {t.key for t in trains if t not in base_trains}
    assert not any(d.key in extra for r in runs if r.stage not in ("seeds", "summary") for d in r.deps)
    assert not any(r.stage == "seeds" for r in default_runs)
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: default.yaml\nseeds: 3\n")
    (tmp_path / "default.yaml").write_text((root / "default.yaml").read_text())
    with pytest.raises(ParameterError, match="seeds must be a list"):
        load_config(bad)


def test_random_transpose_draws_the_square_symmetries_and_is_identity_at_inference():
    x = np.arange(9).reshape(1, 3, 3, 1).astype("float32").repeat(64, axis=0)
    layer = augment.RandomTranspose(seed=0)
    out = np.asarray(layer(x, training=True))
    swapped = np.all(out == x.transpose(0, 2, 1, 3)[:1], axis=(1, 2, 3))
    kept = np.all(out == x[:1], axis=(1, 2, 3))
    assert np.all(swapped | kept) and 10 < swapped.sum() < 54  # each image either way, about half swapped
    assert np.array_equal(np.asarray(layer(x, training=False)), x)


@pytest.mark.slow  # the study's 111 run keys: ≈ 15 s on 2 cores
def test_study_config_plans_every_dataset_two_architectures_three_seeds_and_eighteen_detection_settings(tmp_path):
    """configs/study.yaml (`make study`): 3 datasets × 2 architectures × 3 seeds of detection, and detection on the
    chest sets' adversarially trained models (one seed, though detection runs on every seed: its second section),
    Table II seed rows for every standard model, RADAR-MIX in pixel and in σ units on seed 0's models, robust
    accuracy of the chest sets' standard and adversarially trained models (trained once, shared with detection);
    an unknown per-seed part fails."""
    from advxai.runner.runs import plan

    root = Path(__file__).resolve().parents[1] / "configs"
    cfg = load_config(root / "study.yaml")
    runs = plan(cfg, tmp_path)
    det = [r for r in runs if r.stage == "detection" and "-at" not in r.params["model"]]
    assert len(det) == 18 and {r.params["model"] for r in det} == {f"{m}{s}" for m in ("cnn", "resnet")
                                                                    for s in ("", "·s1", "·s2")}
    det_at = [r for r in runs if r.stage == "detection" and "-at" in r.params["model"]]
    assert sorted(r.label for r in det_at) == ["chest_xray64-cnn-at2", "chest_xray64-resnet-at2",
                                               "pneumoniamnist28-cnn-at2", "pneumoniamnist28-resnet-at2"]
    assert all(r.params["adaptive"]["attack"] is None and r.params["attacks"] == det[0].params["attacks"]
               for r in det_at)
    assert {r.params["dataset"] for r in det} == {"pneumoniamnist", "chest_xray", "isic2018"}
    assert len([r for r in runs if r.stage == "seeds"]) == 6
    trains = [r for r in runs if r.stage == "train"]
    assert len(trains) == 18 + 4 and sum(r.params["adversarial"] is not None for r in trains) == 4  # AT: one seed
    robust = [r for r in runs if r.stage == "robust"]
    assert len(robust) == 8 and {r.params["model"] for r in robust} == {"cnn", "resnet", "cnn-at2", "resnet-at2"}
    assert {r.deps[0].key for r in det_at} == {r.deps[0].key for r in robust if "-at" in r.params["model"]}
    assert all(r.params["n_images"] >= 500 for r in robust)
    rm = [r for r in runs if r.stage == "radarmix"]
    assert sorted(r.label for r in rm) == ["isic2018_28-cnn", "isic2018_28-cnn-sigma", "isic2018_28-resnet",
                                           "isic2018_28-resnet-sigma"]
    assert all(r.params["n_images"] >= 300 and r.params["n_explain"] == {"shap": 60, "lime": 60} for r in rm)
    bad = tmp_path / "bad.yaml"
    (tmp_path / "default.yaml").write_text((root / "default.yaml").read_text())
    for text, message in [("seeds: [1]\nper_seed: [detections]",
                           "per_seed\\[0\\] must be one of gradattacks, radarmix, detection, got 'detections'"),
                          ("seeds: [1]\nper_seed: detection", "per_seed must be a list, got 'detection'"),
                          ("per_seed: [detection]", "per_seed runs parts on every extra training seed, but seeds"),
                          ("seeds: [0, 1]", "each once and not the config's own seed 0"),
                          ("seeds: [1, 1]", "each once")]:
        bad.write_text(f"extends: default.yaml\n{text}\n")
        with pytest.raises(ParameterError, match=message) as err:
            load_config(bad)
        assert "\n" not in str(err.value)


@pytest.mark.slow
def test_pgd_adversarial_training_buys_robust_accuracy_on_real_images(pneumonia, test_batch):
    """Madry's recipe on real PneumoniaMNIST: the same small CNN, seed and epochs, trained on clean batches and on
    PGD adversarials at ε = 8/255; under PGD at that ε (ART, 20 steps, a random start) the adversarially trained one
    keeps more test images correct. The saved network is the plain one (no wrapper layers)."""
    from advxai import attacks

    x, y = pneumonia.split("train")
    xv, yv = pneumonia.split("val")
    xt, yt = test_batch
    eps, robust = 8 / 255, {}
    for adv in (None, {"eps": eps, "steps": 3}):
        net = models.build("cnn", pneumonia.input_shape, 2, width=8, seed=0)
        hist = train.fit(net, x[:2048], y[:2048], xv[:256], yv[:256], epochs=3, batch_size=64, lr=3e-3,
                         augment=False, monitor="none", adversarial=adv, verbose=0)
        x_adv, _ = attacks.generate(net, xt, yt, "pgd", eps, {"max_iter": 20}, seed=0)
        robust[bool(adv)] = np.mean(train.predict_logits(net, x_adv).argmax(1) == yt)
        assert len(hist["loss"]) == 3 and type(net).__name__ == "Functional"
    assert robust[True] > robust[False] + 0.2, robust


def test_an_adversarially_trained_model_is_a_model_entry_of_its_own(tmp_path):
    """``models: [{name: cnn, train: {adversarial: {eps: …}}}]`` plans a training run of its own beside the standard
    one (label ``-cnn-at2``, rows ``cnn-at2``, PGD settings in its parameters), the standard run's key unchanged; a
    typo in its settings fails at config time."""
    from advxai.runner.runs import plan

    base = "datasets: [pneumoniamnist]\nattack: {names: [fgsm], eps: [0.05], n_images: 10}\n"
    plain, both = tmp_path / "plain.yaml", tmp_path / "both.yaml"
    plain.write_text(base + "models: [{name: cnn}]\n")
    both.write_text(base + "models: [{name: cnn}, {name: cnn, train: {adversarial: {eps: 0.00784, steps: 5}}}]\n")
    trains = {r.label: r for r in plan(load_config(both), tmp_path) if r.stage == "train"}
    assert set(trains) == {"pneumoniamnist28-cnn", "pneumoniamnist28-cnn-at2"}
    at = trains["pneumoniamnist28-cnn-at2"]
    assert at.params["adversarial"] == {"eps": 0.00784, "steps": 5} and at.params["model_label"] == "cnn-at2"
    assert trains["pneumoniamnist28-cnn"].params["adversarial"] is None
    assert trains["pneumoniamnist28-cnn"].key == next(r.key for r in plan(load_config(plain), tmp_path)
                                                      if r.stage == "train")
    attacked = {r.params["model"] for r in plan(load_config(both), tmp_path) if r.stage == "attack"}
    assert attacked == {"cnn", "cnn-at2"}
    both.write_text(base + "models: [{name: cnn, train: {adversarial: {epz: 0.01}}}]\n")
    with pytest.raises(ParameterError, match="did you mean 'eps'"):
        load_config(both)


def test_small_data_rule_by_hand():
    """An epoch of fewer than 30 steps halves the batch (not below 8), scales the learning rate by √ of the ratio,
    raises the epochs to 400 updates and softens full class balancing to the square root; the book's sets (≥ 55
    steps per epoch at their batch) are untouched."""
    recipe = {"batch_size": 64, "lr": 0.003, "epochs": 5, "balance": True}
    assert train.small_data_settings(recipe, 4708) == recipe  # PneumoniaMNIST's training split: 74 steps
    assert train.small_data_settings({**recipe, "batch_size": 128}, 7000)["batch_size"] == 128  # 55 steps
    small = train.small_data_settings(recipe, 500)  # 8 steps at 64 -> 16 at 32 -> 32 at 16: 13 epochs of 32
    assert small == {"batch_size": 16, "lr": pytest.approx(0.003 * 0.5), "epochs": 13, "balance": "sqrt"}
    assert train.small_data_settings(recipe, 1000)["batch_size"] == 32  # 16 steps -> 32
    assert train.small_data_settings({**recipe, "epochs": 20}, 1000)["epochs"] == 20  # already 640 updates
    assert train.small_data_settings({**recipe, "balance": False}, 500)["balance"] is False  # none stays none
    assert train.small_data_settings(recipe, 50)["batch_size"] == 8  # the floor: 7 steps, 58 epochs
    assert train.small_data_settings(recipe, 50)["epochs"] == 58
    assert recipe["batch_size"] == 64  # the caller's settings are not changed


@pytest.mark.slow
def test_the_default_recipe_beats_the_majority_on_500_real_images(pneumonia):
    """A user's small set, as bench/small_data.py draws it: 500 stratified PneumoniaMNIST training images, the
    default recipe for 5 epochs through the runner's path (the rule makes it 13). Without the rule this trained to the
    majority baseline (test accuracy 0.627 vs 0.625, balanced accuracy 0.50, AUC 0.94)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from small_data import subsample

    recipe = {**load_config(Path(__file__).resolve().parents[1] / "configs" / "default.yaml")["train"], "epochs": 5}
    idx = subsample(pneumonia.split("train")[1], 500, 0)

    class Small:  # the dataset with its training split cut to 500 images
        name, input_shape, n_classes = pneumonia.name, pneumonia.input_shape, pneumonia.n_classes

        @staticmethod
        def split(s):
            x, y = pneumonia.split(s)
            return (x[idx], y[idx]) if s == "train" else (x, y)

    net, hist = train.build_and_fit(Small, "cnn", {"width": 16}, recipe, seed=0)
    assert hist["batch_size"] == 16
    x, y = pneumonia.split("test")
    m = train.evaluate(net, x, y)
    assert m["accuracy"] > benchmarks.majority_share(y) + 0.08 and m["balanced_accuracy"] > 0.7 and m["auc"] > 0.9
