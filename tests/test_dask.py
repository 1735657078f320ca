"""The Dask executor against a real cluster on 127.0.0.1: a scheduler and two workers as separate processes."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from advxai.runner import pipeline

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """configs/tiny.yaml without its RADAR-MIX, detection, robustness and seeds parts (the executor, not the stages, is
    tested)."""
    cfg = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    cfg.pop("radarmix")
    cfg.pop("detection")
    cfg.pop("robustness")
    cfg.pop("seeds")
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask-logs")
    procs = [subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=open(logs / "scheduler.log", "w"), stderr=subprocess.STDOUT)]
    for i in range(2):  # no nanny: killing a worker really removes it
        procs.append(subprocess.Popen([BIN / "dask", "worker", address, "--nthreads", "1", "--no-nanny",
                                       "--no-dashboard", "--name", f"w{i}", "--local-directory", str(logs / f"w{i}")],
                                      stdout=open(logs / f"w{i}.log", "w"), stderr=subprocess.STDOUT, env=os.environ))
    from dask.distributed import Client

    # waits, not deadlines: a loaded machine starts the scheduler and the workers late, not never
    with Client(address, timeout=600) as client:
        client.wait_for_workers(2)
    yield address, procs
    for p in procs:
        p.kill()
        p.wait()


def _run_tables(config: Path, results: Path) -> dict[str, pd.DataFrame]:
    runs = [r for r in pipeline.plan(pipeline.load_config(config), results) if r.stage != "summary"]
    return {r.out_dir.name: pd.read_csv(r.out_dir / "metrics.csv")
            for r in runs if (r.out_dir / "metrics.csv").exists()}


def _same_numbers(a: pd.DataFrame, b: pd.DataFrame) -> float:
    a, b = a[a.metric != "seconds"].reset_index(drop=True), b[b.metric != "seconds"].reset_index(drop=True)
    assert list(a.metric) == list(b.metric)
    return float((a.value - b.value).abs().max())


def test_dask_grid_with_a_worker_killed_mid_task_completes_once_and_equals_the_local_grid(cluster, tiny, tiny_grid,
                                                                                         tmp_path):
    """One grid on the cluster, a worker killed while it trains: every run done, one finished copy each, no debris,
    the same run keys and numbers as the grid run on this machine (one test: a second, undisturbed grid cost a
    minute)."""
    address, procs = cluster
    from dask.distributed import Client

    with Client(address) as client:
        pids = client.run(os.getpid)  # worker address -> pid
    box = {}
    thread = threading.Thread(target=lambda: box.update(records=pipeline.run_grid(
        tiny, tmp_path, executor="dask", scheduler=address, log=lambda *a, **k: None)))
    thread.start()
    while thread.is_alive() and not list((tmp_path / "runs" / "train").glob(".tmp-*")):
        time.sleep(0.2)  # until the training task is in flight (its temporary folder exists)
    with Client(address) as client:
        busy = [w for w, tasks in client.processing().items() if tasks]
    assert busy, "no worker was running the training task"
    os.kill(pids[busy[0]], signal.SIGKILL)  # kill the worker mid-task
    thread.join()
    assert [r["status"] for r in box["records"]] == ["done"] * 6
    for stage in ("train", "attack", "gradcam", "distortion", "strength", "summary"):
        dirs = list((tmp_path / "runs" / stage).iterdir())
        assert len(dirs) == 1 and (dirs[0] / "provenance.json").exists(), stage  # one finished copy, no debris
    local, dist = _run_tables(tiny, tiny_grid[0]), _run_tables(tiny, tmp_path)
    assert set(local) == set(dist)  # the same run keys
    assert max(_same_numbers(local[k], dist[k]) for k in local) < 1e-6
