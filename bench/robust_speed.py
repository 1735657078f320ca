"""What the robustness stage's attacks cost, ours (compiled ports) against ART's, side by side in one run.

    python bench/robust_speed.py [--dataset pneumoniamnist --size 28 --model cnn --images 200 --epochs 3]
                                 [--eps 0.0039216 --square-iter 1000 --restarts 5]

On ``--images`` class-balanced test images of ``--dataset``, a model of the study's family ``--model`` trained
briefly on the real data (costs depend on the architecture, the input size and how many images stay robust, not on
the weights): AutoAttack's standard ensemble without FAB-T (``autoattack-nofab``, Square at ``--square-iter``
queries) and PGD-50 with ``--restarts`` random starts, each by ART's registry entry and by the compiled port
(:mod:`advxai.attacks.autoattack`), with the robust accuracy each reached (the port's must be no higher, up to the
random search's noise). One warm call each; prints seconds, the ratio and the robust accuracies.
"""

from __future__ import annotations

import argparse

import numpy as np

from advxai import attacks, data
from advxai.attacks import autoattack
from advxai.models import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="pneumoniamnist")
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--eps", type=float, default=1 / 255)
    ap.add_argument("--square-iter", type=int, default=1000)
    ap.add_argument("--restarts", type=int, default=5)
    a = ap.parse_args()

    ds = data.load(a.dataset, a.size)
    net, _ = train.build_and_fit(ds, a.model, {}, {"epochs": a.epochs}, seed=0)
    x, y = ds.split("test")
    idx = data.balanced_subset(y, a.images, seed=0)
    x, y = x[idx], y[idx]
    acc = lambda xa: float(np.mean(train.predict_logits(net, xa).argmax(1) == y))  # noqa: E731
    autoattack.robust_generate(net, x[:8], y[:8], "autoattack-nofab", a.eps, {"square_iter": 5}, seed=0)  # compile
    print(f"{a.dataset} {a.size} px, {a.model}, {len(x)} images, ε = {a.eps:.5f}, clean accuracy {acc(x):.3f}")
    print(f"{'attack':<34}{'ART s':>8}{'ours s':>8}{'ratio':>7}{'ART acc':>9}{'ours acc':>9}")
    for name, params in [("autoattack-nofab", {"square_iter": a.square_iter}),
                         ("pgd", {"max_iter": 50, "step_ratio": 0.1, "num_random_init": a.restarts})]:
        x_art, s_art = attacks.generate(net, x, y, name, a.eps, params, seed=0)
        x_ours, s_ours = autoattack.robust_generate(net, x, y, name, a.eps, params, seed=0)
        label = f"{name} {', '.join(f'{k}={v}' for k, v in params.items() if k != 'step_ratio')}"
        print(f"{label:<34}{s_art:8.1f}{s_ours:8.1f}{s_art / s_ours:6.1f}×{acc(x_art):9.3f}{acc(x_ours):9.3f}")


if __name__ == "__main__":
    main()
