"""What ``lumen.watch`` costs the loop it watches: a plain PyTorch loop's speed with and without it, side by side.

One process, one model, one optimiser, the torch threads the script has (``--threads``, default torch's own): the
loop alternates between windows of ``--window`` seconds without ``w.step`` and windows with it (the same model goes
on training throughout, so both kinds of window do the same work), and each pair's ratio of steps per second is
reported (median, min, max), so a change in the machine's load hits both alike. So is the ratio of steps per second
of the loop thread's own CPU time (``time.thread_time``), which a busy machine disturbs far less: with one torch
thread it is the watch's whole cost inside the loop's thread (the link thread and the window process are not in
it). The watch has its window open (offscreen unless QT_QPA_PLATFORM says otherwise: a real process, drawing every
curve and view it gets) or, with ``--headless``, records the run in the run store instead (``window=False``).

    python benchmarks/watch_overhead.py [--model lenet5|lstm_many_to_one] [--pairs 8] [--window 3] [--headless]
    python benchmarks/watch_overhead.py --rss-steps 20000 [--model ...]   # memory growth of the script instead

Models: LeNet-5 on the bundled digits (batches of 64), ``lstm_many_to_one`` on ``recall`` (batches of 64), built
from Lumen's presets but trained by the plain loop below (cross-entropy, Adam). Goal: ratio ≥ 0.95; the script's
resident memory grows < 20 MB over 20,000 watched steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LUMEN_DATA_DIR", tempfile.mkdtemp(prefix="lumen-bench-"))  # runs recorded, not kept

import torch
from torch import nn

import lumen
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from lumen.engine.training.fit import load_run_data, plan_run


def setup(name: str, batch: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor, tuple[str, ...], torch.Tensor]:
    spec = get_preset(name)
    data, _ = load_run_data(spec, None)
    plan = plan_run(spec, data)
    torch.manual_seed(0)
    model = build_model(plan.spec)
    return model, data.train_x, data.train_y, tuple(data.classes), data.val_x[:16]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lenet5", choices=["lenet5", "lstm_many_to_one"])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--window", type=float, default=3.0, help="seconds per window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--headless", action="store_true", help="window=False: record the run instead")
    parser.add_argument("--rss-steps", type=int, default=0, help="measure memory over this many watched steps")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, x, y, classes, probe = setup(args.model, args.batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = len(x)
    position = 0

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal position
        if position + args.batch > n:
            position = 0
        start, position = position, position + args.batch
        return x[start:position], y[start:position]

    def train_step() -> tuple[float, float]:
        xb, yb = batch()
        optimizer.zero_grad()
        out = model(xb)
        loss = nn.functional.cross_entropy(out, yb)
        loss.backward()
        optimizer.step()
        return loss.item(), (out.argmax(1) == yb).float().mean().item()

    w = lumen.watch(model, probe_input=probe, classes=classes, window=not args.headless)
    if not args.headless and not w.wait_for_window(60):
        sys.exit("the window did not start")

    if args.rss_steps:
        for _ in range(1000):  # warm: allocator pools, the probes' first frames, the link's buffers
            w.step(**dict(zip(("loss", "accuracy"), train_step())))
        before = rss_mb()
        for _ in range(args.rss_steps):
            loss, accuracy = train_step()
            w.step(loss=loss, accuracy=accuracy)
        after = rss_mb()
        w.close()
        if w._link.process is not None:
            w._link.process.terminate()
        print(
            f"{args.model}: RSS {before:.1f} MB after 1,000 steps, {after:.1f} MB after {args.rss_steps:,} more: "
            f"+{after - before:.1f} MB ({'window' if not args.headless else 'headless'})"
        )
        return

    def run(seconds: float, watched: bool) -> tuple[float, float]:
        """Steps per second of wall time, and per second of the loop thread's own CPU time."""
        steps, began, cpu = 0, time.perf_counter(), time.thread_time()
        while time.perf_counter() - began < seconds:
            loss, accuracy = train_step()
            if watched:
                w.step(loss=loss, accuracy=accuracy)
            steps += 1
        return steps / (time.perf_counter() - began), steps / max(time.thread_time() - cpu, 1e-9)

    def window_cpu_s() -> float:
        """CPU seconds the window process has used (0 without one, or off Linux)."""
        process = w._link.process
        try:
            with open(f"/proc/{process.pid}/stat") as f:  # type: ignore[union-attr]
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, AttributeError, IndexError, ValueError):
            return 0.0

    run(args.warmup, True)
    run(args.warmup, False)
    window_began, wall_began = window_cpu_s(), time.perf_counter()
    ratios, cpu_ratios, bare_rates = [], [], []
    for i in range(args.pairs):
        if i % 2 == 0:  # alternate which goes first, so a drift in load does not favour one
            bare, watched = run(args.window, False), run(args.window, True)
        else:
            watched, bare = run(args.window, True), run(args.window, False)
        ratios.append(watched[0] / bare[0])
        cpu_ratios.append(watched[1] / bare[1])
        bare_rates.append(bare[0])
        print(
            f"  pair {i + 1}: bare {bare[0]:7.1f} steps/s, watched {watched[0]:7.1f} steps/s, ratio "
            f"{ratios[-1]:.3f}; per CPU second of the loop's thread: ratio {cpu_ratios[-1]:.3f}"
        )
    window_share = (window_cpu_s() - window_began) / (time.perf_counter() - wall_began)
    link = w._link
    w.close()
    if link.process is not None:
        link.process.terminate()  # a script's window stays open when it ends; a benchmark's need not
    print(
        f"{args.model} ({'headless' if args.headless else 'window'}, {torch.get_num_threads()} torch threads, "
        f"batch {args.batch}): wall-clock ratio median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, "
        f"max {max(ratios):.3f}); loop-thread CPU ratio median {statistics.median(cpu_ratios):.3f} (min "
        f"{min(cpu_ratios):.3f}, max {max(cpu_ratios):.3f}); {args.pairs} pairs of {args.window:g} s; bare loop "
        f"{statistics.median(bare_rates):.0f} steps/s; {link.frames_sent} frames sent, {link.frames_dropped} replaced "
        f"before sending; the window process used {window_share:.0%} of a core"
    )


if __name__ == "__main__":
    main()
