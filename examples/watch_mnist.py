"""Watch your own training loop in Lumen: a plain PyTorch LeNet-5 on the 5,000 digits bundled with Lumen.

    python examples/watch_mnist.py [--epochs 3] [--headless]

A Lumen window opens in a process of its own and shows the layers, the loss and accuracy curves as they grow,
gradient norms and histograms, and what the model makes of a few validation digits (feature maps, attribution).
Closing the window does not stop the script; the script ending leaves the window open (File → Save run… keeps
the run). ``--headless`` records the run into runs/watch_mnist and the run store instead, for Lumen's runs list.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

import lumen


class LeNet5(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(torch.relu(self.conv1(x)))
        x = self.pool2(torch.relu(self.conv2(x)))
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc3(torch.relu(self.fc2(x)))


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled digits (any MNIST-like tensors of N×1×28×28 and N labels would do)."""
    with np.load(Path(lumen.__file__).parent / "resources" / "mnist_5k.npz") as archive:
        images, labels = archive["images"], archive["labels"]
    return torch.from_numpy(images).float().div(255).unsqueeze(1), torch.from_numpy(labels).long()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--headless", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    x, y = digits()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))  # the file is sorted by digit
    x, y = x[order], y[order]
    train_x, train_y, val_x, val_y = x[:4500], y[:4500], x[4500:], y[4500:]
    model = LeNet5()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    options = {"window": False, "out": "runs/watch_mnist"} if args.headless else {}
    with lumen.watch(model, probe_input=(val_x[:32], val_y[:32]), classes=[str(d) for d in range(10)], **options) as w:
        for epoch in range(args.epochs):
            order = torch.randperm(len(train_x))
            for start in range(0, len(order), 64):
                batch = order[start : start + 64]
                optimizer.zero_grad()
                out = model(train_x[batch])
                loss = loss_fn(out, train_y[batch])
                loss.backward()
                optimizer.step()
                accuracy = (out.argmax(1) == train_y[batch]).float().mean()
                w.step(loss=loss.item(), accuracy=accuracy.item())
            with torch.no_grad():
                model.eval()
                val_out = model(val_x)
                val_loss = loss_fn(val_out, val_y).item()
                val_accuracy = (val_out.argmax(1) == val_y).float().mean().item()
                model.train()
            w.epoch(loss=val_loss, accuracy=val_accuracy)  # optional: validation points beside the epoch's means
            print(f"epoch {epoch + 1}: validation accuracy {val_accuracy:.1%}")


if __name__ == "__main__":
    main()
