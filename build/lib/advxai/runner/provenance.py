"""Provenance: what every run records beside its results (parameters, git commit, data MD5, library versions,
lock file, modules, platform, run time), and the block each published page shows from it."""

from __future__ import annotations

import json
import platform
import subprocess
import time

from .. import __version__
from . import environment, fingerprint
from .runs import ROOT, Run


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "lib", "notebooks"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return sha.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(run: Run, seconds: float, started: float) -> dict:
    return {"stage": run.stage, "label": run.label, "key": run.key, "parameters": run.notebook_parameters(),
            "dir": str(run.out_dir),
            "data_md5": run.params.get("data_md5"), "git_commit": git_commit(), "versions": environment.versions(),
            "lock": environment.lock_hash(), "lock_file": str(environment.lock_file() or ""),
            "modules": fingerprint.notebook_modules(run.notebook), "key_parts": run.key_parts, "render": run.render,
            "advxai": __version__, "code_md5": fingerprint.code_fingerprint(run.notebook),
            "platform": platform.platform(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)), "seconds": round(seconds, 2),
            "upstream": [str(d.out_dir) for d in run.deps]}


def provenance_markdown(prov: dict) -> str:
    """The provenance block shown at the end of every published page, from the run's ``provenance.json``."""
    v = prov["versions"]
    libs = ", ".join(f"{k} {v[k]}" for k in ("tensorflow-cpu", "tensorflow", "keras", "adversarial-robustness-toolbox",
                                             "tf-keras-vis", "numpy", "scikit-learn") if k in v)
    params = {k: val for k, val in prov["parameters"].items() if k not in ("out_dir", "run_id") and
              not k.endswith(("_dir", "_dirs"))}
    rows = "\n".join(f"| `{k}` | `{json.dumps(val)}` |" for k, val in sorted(params.items()))
    return (f"## Provenance\n\nRun `{prov['dir'].rsplit('/', 1)[-1]}` (stage {prov['stage']}), started "
            f"{prov['started']}, {prov['seconds']:.0f} s; git commit `{prov['git_commit']}`; library code MD5 "
            f"`{prov['code_md5']}`; data MD5 `{prov.get('data_md5') or '—'}`; Python {v.get('python')}, {libs}; "
            f"{prov['platform']}.\n\n| parameter | value |\n|---|---|\n{rows}\n")
