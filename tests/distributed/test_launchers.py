"""The launch scripts on CPU: launchers/torchrun.sh in its multi-node form (two "nodes" on this host, c10d
rendezvous), and slurm/post_train.sh with stand-ins for srun/scontrol: USR1 -> STOP file -> checkpoint ->
`scontrol requeue`, and the requeued job resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from train_runs import REPO, TIMEOUT, env, losses, tiny_train_config, write_config

pytestmark = [pytest.mark.dist, pytest.mark.slow]


def test_torchrun_launcher_two_nodes_with_c10d(tmp_path, synthetic_corpus):
    cfg = tiny_train_config(tmp_path / "run", synthetic_corpus, "gla", steps=3)
    config = write_config(cfg, tmp_path / "run.yaml")
    port = str(29700 + os.getpid() % 200)
    procs = []
    for node in range(2):
        e = {**env(), "NNODES": "2", "NGPU": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
             "RDZV_ID": f"test{os.getpid()}", "LOG_DIR": str(tmp_path / f"logs{node}")}
        log = open(tmp_path / f"node{node}.log", "wb")
        procs.append(subprocess.Popen([str(REPO / "launchers" / "torchrun.sh"), str(config)], env=e, stdout=log,
                                      stderr=subprocess.STDOUT))
    rcs = [p.wait(timeout=TIMEOUT) for p in procs]
    assert rcs == [0, 0], [(tmp_path / f"node{i}.log").read_text()[-2000:] for i in range(2)]
    assert sorted(losses(tmp_path / "run")) == [1, 2, 3]
    assert list((tmp_path / "logs0").rglob("stdout.log")), "per-rank log files"


def _fake_slurm_bin(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text('#!/bin/bash\nwhile [[ "$1" == --* ]]; do shift; done\nexec "$@"\n')
    (bin_dir / "scontrol").write_text(
        '#!/bin/bash\nif [[ "$1" == show ]]; then echo localhost; '
        'elif [[ "$1" == requeue ]]; then echo "$2" >> "$FAKE_REQUEUE_LOG"; fi\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir


def test_slurm_script_checkpoints_on_usr1_and_requeues(tmp_path, synthetic_corpus):
    cfg = tiny_train_config(tmp_path / "run", synthetic_corpus, "mamba2", steps=10_000)
    config = write_config(cfg, tmp_path / "run.yaml")
    e = {**env(), "PATH": f"{_fake_slurm_bin(tmp_path)}:{os.environ['PATH']}", "SLURM_JOB_ID": "4242",
         "SLURM_JOB_NODELIST": "localhost", "SLURM_NNODES": "1", "SLURM_GPUS_ON_NODE": "2",
         "SLURM_SUBMIT_DIR": str(REPO), "MASTER_PORT": str(29900 + os.getpid() % 90),
         "FAKE_REQUEUE_LOG": str(tmp_path / "requeued")}
    log = open(tmp_path / "job.log", "wb")
    job = subprocess.Popen(["bash", str(REPO / "slurm" / "post_train.sh"), str(config)], env=e, stdout=log,
                           stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.time() + TIMEOUT
    while not ((tmp_path / "run" / "metrics.jsonl").exists() and len(losses(tmp_path / "run")) >= 2):
        assert job.poll() is None, (tmp_path / "job.log").read_text()[-3000:]
        assert time.time() < deadline
        time.sleep(0.2)
    job.send_signal(signal.SIGUSR1)  # what --signal=B:USR1@300 does
    assert job.wait(timeout=TIMEOUT) == 0, (tmp_path / "job.log").read_text()[-3000:]
    text = (tmp_path / "job.log").read_text()
    assert "USR1" in text and "requeueing job 4242" in text
    assert (tmp_path / "requeued").read_text().strip() == "4242"
    step = max(losses(tmp_path / "run"))
    assert (tmp_path / "run" / "checkpoints" / f"step_{step:08d}" / "COMPLETE").exists()
    assert list((tmp_path / "run" / "logs" / "4242").rglob("stderr.log")), "per-rank log files"
    # The requeued job: the same command resumes from the checkpoint (finish one more step).
    rc = subprocess.run(["bash", str(REPO / "slurm" / "post_train.sh"), str(config), f"steps={step + 1}"], env=e,
                        stdout=open(tmp_path / "job2.log", "wb"), stderr=subprocess.STDOUT, cwd=REPO,
                        timeout=TIMEOUT).returncode
    assert rc == 0, (tmp_path / "job2.log").read_text()[-3000:]
    assert max(losses(tmp_path / "run")) == step + 1
    assert "resumed from" in (tmp_path / "job2.log").read_text()
