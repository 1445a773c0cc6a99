"""Gate capture cost: ``engine.explain.gates.capture_gates`` against a plain forward of the same module, and a
naive Python cell loop (per-step matrix products, as ``LSTMLayer.lstm_trace`` does) for comparison.

A 2-layer bidirectional LSTM, T=100, batch 32, 128 units, float32, eval mode, no autograd. The three calls
alternate within each repeat so that load on the machine hits them alike; medians and ratios to the plain
forward are printed for each thread count (goal: capture ≤ 2× the forward). ``--cell`` also runs a GRU or RNN.

    python benchmarks/gate_capture.py [--threads 1 2] [--repeats 30] [--steps 100] [--batch 32] [--hidden 128]
        [--cell lstm|gru|rnn] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import nn

from lumen.engine.explain.gates import capture_gates

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def cell_loop(module: nn.LSTM, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The naive way: every layer and direction stepped in Python, one matrix product per step (LSTM only)."""
    seq, gates = x.transpose(0, 1), {}
    directions = 2 if module.bidirectional else 1
    for k in range(module.num_layers):
        outs = []
        for d in range(directions):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(module, "weight_ih" + sfx), getattr(module, "weight_hh" + sfx)
            bias = getattr(module, "bias_ih" + sfx) + getattr(module, "bias_hh" + sfx)
            h = seq.new_zeros(seq.shape[1], module.hidden_size)
            c = torch.zeros_like(h)
            steps: list[list[torch.Tensor]] = [[] for _ in range(6)]
            for t in range(seq.shape[0] - 1, -1, -1) if d else range(seq.shape[0]):
                i, f, g, o = torch.addmm(bias, torch.cat([seq[t], h], 1), torch.cat([w_ih, w_hh], 1).T).chunk(4, 1)
                i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
                c = f * c + i * g
                h = o * c.tanh()
                for store, value in zip(steps, (i, f, g, o, c, h)):
                    store.append(value)
            for name, store in zip("ifgoch", steps):
                gates[f"l{k}.{d}.{name}"] = torch.stack(store[::-1] if d else store)
            outs.append(gates[f"l{k}.{d}.h"])
        seq = torch.cat(outs, -1)
    return gates


def timed(fn, sync) -> float:  # type: ignore[no-untyped-def]
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--cell", choices=CELLS, default="lstm")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device(args.device)
    module = CELLS[args.cell](args.hidden, args.hidden, num_layers=2, bidirectional=True, batch_first=True)
    module = module.to(device).eval()
    x = torch.randn(args.batch, args.steps, args.hidden, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    calls = {
        "plain forward": lambda: module(x),
        "capture_gates": lambda: capture_gates(module, x),
    }
    if args.cell == "lstm":
        calls["python cell loop"] = lambda: cell_loop(module, x)
    print(
        f"2-layer bidirectional {args.cell.upper()}, T={args.steps}, batch {args.batch}, {args.hidden} units, "
        f"{device}, torch {torch.__version__}, {os.cpu_count()} CPUs, median of {args.repeats}"
    )
    with torch.no_grad():
        for threads in args.threads:
            torch.set_num_threads(threads)
            for fn in calls.values():  # warm up: allocator, kernels, thread pool
                for _ in range(3):
                    fn()
            times: dict[str, list[float]] = {name: [] for name in calls}
            for _ in range(args.repeats):
                for name, fn in calls.items():
                    times[name].append(timed(fn, sync))
            base = statistics.median(times["plain forward"])
            for name, values in times.items():
                median = statistics.median(values)
                print(f"  threads={threads:<3} {name:<17} {median * 1e3:8.2f} ms  {median / base:5.2f}×")


if __name__ == "__main__":
    main()
