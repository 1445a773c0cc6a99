"""A plain PyTorch loop watched by ``lumen.watch``, run by the watch tests as a script of its own.

    python watch_script.py SECONDS STEPS [--out RUN] [--headless] [--window ADDRESS_JSON KEY_HEX]

It trains for at least STEPS steps and at least SECONDS seconds. ``--window``: connect to a window the test made
(in its own process, under pytest-qt) instead of starting one; ``--headless``: ``window=False``.
"""

import argparse
import json
import sys
import time
from multiprocessing.connection import Client

import torch
from torch import nn

import lumen

parser = argparse.ArgumentParser()
parser.add_argument("seconds", type=float)
parser.add_argument("steps", type=int)
parser.add_argument("--out")
parser.add_argument("--headless", action="store_true")
parser.add_argument("--window", nargs=2)
args = parser.parse_args()
if args.window:
    import lumen.watching.client as client

    address, key = json.loads(args.window[0]), bytes.fromhex(args.window[1])
    client._launch_window = lambda name: (None, Client(address, authkey=key))

torch.manual_seed(0)
torch.set_num_threads(1)
model = nn.Sequential(
    nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 14 * 14, 10)
)
x, y = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
called = time.monotonic()
w = lumen.watch(model, probe_input=(x[:4], y[:4]), window=not args.headless, out=args.out)
returned_s = time.monotonic() - called  # a notebook goes on at once: the window starts on the link's thread
began, step = time.monotonic(), 0
while step < args.steps or time.monotonic() - began < args.seconds:
    optimizer.zero_grad()
    out = model(x)
    loss = nn.functional.cross_entropy(out, y)
    loss.backward()
    optimizer.step()
    w.step(loss=loss, accuracy=(out.argmax(1) == y).float().mean())
    step += 1
    time.sleep(0.002)
w.close()
window = w._link.process.pid if w._link.process else None  # lumen.watch returned at once; the window came later
qt = any(m.startswith("PySide6") for m in sys.modules)
print(json.dumps({"steps": step, "run": w.run_id, "qt": qt, "window": window, "returned_s": returned_s}))
