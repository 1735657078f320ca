"""The README's figure: the first Grad-CAM example figure of a built grid's chest X-ray run page, as drawn there.

    python bench/readme_figure.py [--results results] [--out docs/figure.png]

It copies the figure from the published page (the run's re-rendered page where there is one), so the README shows
what the book shows; it prints the run it came from, which the README's caption names.
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "figure.png")
    args = ap.parse_args()
    runs = list((args.results / "runs" / "gradcam").glob("chest_xray*/provenance.json"))
    if not runs:
        raise SystemExit(f"bench/readme_figure.py: no finished chest X-ray Grad-CAM run under {args.results}; "
                         "run `make book` first")
    # the config seed's compact CNN (no ·s<seed> tail), its latest run: a results folder keeps earlier keys' runs
    prov = {p: json.loads(p.read_text()) for p in runs}
    pick = [p for p in runs if prov[p]["parameters"]["model"] == "cnn"] or runs
    run = max(pick, key=lambda p: prov[p].get("started", "")).parent
    page = run / "page.ipynb" if (run / "page.ipynb").exists() else run / "notebook.ipynb"
    for cell in json.loads(page.read_text())["cells"]:
        for out in cell.get("outputs", []):
            if "image/png" in out.get("data", {}):
                args.out.write_bytes(base64.b64decode(out["data"]["image/png"]))
                print(f"{args.out}: from {page.relative_to(args.results)}")
                return
    raise SystemExit(f"bench/readme_figure.py: {page} holds no figure")


if __name__ == "__main__":
    main()
