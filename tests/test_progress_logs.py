"""Long loops log progress lines into the rule's log; warnings and unexpected tracebacks land there too, while a
user error stays one line."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap

from stitch.progress import progress_line, tqdm


def test_progress_line_format():
    line = progress_line("pti", 120, 2880, 20.0, "epoch=1")
    assert line == "pti: 120/2880 (4.2%) 6.00 it/s, elapsed 0:00:20, ETA 0:07:40 [epoch=1]"
    assert progress_line("landmarks", 5, None, 0.0) == "landmarks: 5 ? it/s, elapsed 0:00:00"


def test_bar_logs_every_interval_and_at_the_end(monkeypatch, caplog):
    monkeypatch.setenv("STITCH_LOG_INTERVAL", "0")
    with caplog.at_level(logging.INFO, logger="stitch.progress"):
        for _ in tqdm(range(4), desc="invert"):
            pass
        bar = tqdm(total=3, desc="pti")
        for _ in range(3):
            bar.update()
        bar.close()
        for _ in tqdm(range(3), desc="quiet", disable=True):
            pass
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" ")[1] for line in lines if line.startswith("invert:")][:4] == ["1/4", "2/4", "3/4", "4/4"]
    assert any(line.startswith("pti: 3/3 (100.0%)") for line in lines)
    assert not any(line.startswith("quiet") for line in lines)


def _run_rule_script(tmp_path, body: str) -> tuple[subprocess.CompletedProcess, str]:
    script = tmp_path / "rule.py"
    log = tmp_path / "rule.log"
    script.write_text(textwrap.dedent(f"""
        import types
        from stitch.smk import setup
        setup(types.SimpleNamespace(log=[{str(log)!r}], threads=1, rule="demo", output=[], resources={{}}))
    """) + textwrap.dedent(body))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    return proc, log.read_text()


def test_unexpected_error_and_warnings_reach_the_log(tmp_path):
    proc, log = _run_rule_script(tmp_path, """
        import warnings
        warnings.warn("odd input")
        raise RuntimeError("boom")
    """)
    assert proc.returncode == 1
    assert "UserWarning: odd input" in log
    assert "Traceback (most recent call last)" in log and "RuntimeError: boom" in log


def test_user_error_stays_one_line(tmp_path):
    proc, log = _run_rule_script(tmp_path, """
        from stitch.errors import StitchError
        raise StitchError("clip.mp4: no face found; try landmarks.upsample: 1")
    """)
    assert proc.returncode == 1
    assert "Traceback" not in log + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "stitch error: clip.mp4: no face found; try landmarks.upsample: 1"
    # the job's exact peak RSS (getrusage) closes its log file, not stderr
    assert re.search(r"stitch: peak RSS \d+\.\d MB$", log.strip()) and "peak RSS" not in proc.stderr


def test_job_cpu_time_is_logged_exactly(tmp_path):
    """The job's CPU seconds (getrusage, with its waited-for children) come before the peak RSS at the end of its
    log: a job that burns 0.6 s of CPU in itself and 0.6 s in a child, then sleeps 2 s, logs 1.2 s + its start-up."""
    proc, log = _run_rule_script(tmp_path, """
        import subprocess, sys, time
        def burn(seconds):
            t0 = time.process_time()
            while time.process_time() - t0 < seconds:
                pass
        burn(0.6)
        subprocess.run([sys.executable, "-c", "import time\\nt0 = time.process_time()\\n"
                        "while time.process_time() - t0 < 0.6: pass"], check=True)
        time.sleep(2.0)  # wall time, no CPU
    """)
    assert proc.returncode == 0, proc.stderr
    lines = log.strip().splitlines()
    cpu = re.search(r"stitch: CPU time (\d+\.\d) s$", lines[-2])
    assert cpu and 1.2 <= float(cpu.group(1)) < 2.5, lines[-2:]  # + start-up; the wall time is over 3.2 s
    assert re.search(r"stitch: peak RSS \d+\.\d MB$", lines[-1])
    assert "CPU time" not in proc.stderr


def test_torch_rules_on_crops_fix_a_higher_mmap_threshold(tmp_path):
    """``setup`` (the video stages) and ``setup_torch(video_frames=True)`` fix glibc's mmap threshold at 1 MB; a
    torch rule on crops (``setup_torch``) at 16 MB, above its tensors (bench_malloc.py --torch)."""
    proc, log = _run_rule_script(tmp_path, """
        import stitch.smk as smk
        calls = []
        smk.fixed_mmap_threshold = lambda n: calls.append(n >> 20) or True
        ns = types.SimpleNamespace(log=[], threads=1, rule="pti", output=[], resources={})
        smk.setup(ns)
        smk.setup_torch(ns)
        smk.setup_torch(ns, video_frames=True)
        print("MB", *calls)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0] == "MB 1 16 1"  # setup, setup_torch, setup_torch(video_frames=True)
