"""Lumen: build, train and look inside neural networks.

    python main.py                      the window
    python main.py --self-test          open the window offscreen, train a step, render a frame, exit
    python main.py presets              list the model presets
    python main.py summary MODEL        layer table of a preset or a spec JSON file
    python main.py train MODEL --data mnist --epochs N --out RUN_DIR
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line instead of usage + error
        self.exit(2, f"lumen: {message} (see 'python main.py --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lumen", description="Build, train and look inside neural networks.")
    parser.add_argument("--self-test", action="store_true",
                        help="open the main window offscreen, run one training step, render one frame, exit")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    commands.add_parser("presets", help="list the model presets")
    summary = commands.add_parser("summary", help="print a model's layer table")
    summary.add_argument("model", help="a preset name (see 'presets') or a model spec JSON file")
    train = commands.add_parser("train", help="train a model headless and save the run")
    train.add_argument("model", help="a preset name or a model spec JSON file")
    train.add_argument("--data", default="mnist", help="bundled dataset (default: mnist)")
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument("--out", required=True, type=Path, help="run folder to write")
    train.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default: 0.001)")
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--seed", type=int, default=0)
    return parser


def load_model_arg(model: str):
    from engine.presets import PRESETS, get_preset
    from engine.spec import ModelSpec

    if model in PRESETS:
        return get_preset(model)
    if Path(model).exists():
        return ModelSpec.load(model)
    return get_preset(model)  # raises with the list of presets


def cmd_presets() -> None:
    from engine.presets import PRESETS

    width = max(len(name) for name in PRESETS)
    for preset in PRESETS.values():
        print(f"{preset.name:<{width}}  {preset.summary}")


def cmd_summary(model: str) -> None:
    from engine.graph import summarize
    from engine.layers import fmt

    spec = load_model_arg(model)
    rows = summarize(spec)
    table = [("name", "type", "output shape", "params")]
    table += [(r.name, r.type, fmt(r.output_shape), f"{r.params:,}") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    print(f"{spec.name}: {spec.description}" if spec.description else spec.name)
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(w) if k < 3 else cell.rjust(w) for k, (cell, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"total params: {sum(r.params for r in rows)}")


def cmd_train(args: argparse.Namespace) -> None:
    import torch

    from engine.data import load_dataset
    from engine.events import EpochMetrics, StepMetrics
    from engine.graph import build_model
    from engine.runs import save_run
    from engine.training import TrainConfig, Training

    spec = load_model_arg(args.model)
    config = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed)
    config.check()
    data = load_dataset(args.data)
    torch.manual_seed(config.seed)
    model = build_model(spec)
    training = Training(model, data, config)
    history: list = []
    info = {"dataset": data.name, "config": vars(config)}
    began = time.monotonic()
    try:
        for event in training.steps():
            history.append(event)
            if isinstance(event, StepMetrics):
                _progress(event, time.monotonic() - began)
            elif isinstance(event, EpochMetrics):
                sys.stderr.write("\n")
                print(f"epoch {event.epoch}: train loss {event.train_loss:.4f} acc {event.train_accuracy:.4f}  "
                      f"val loss {event.val_loss:.4f} acc {event.val_accuracy:.4f}", flush=True)
    except KeyboardInterrupt:
        save_run(args.out, spec, model, history, {**info, "interrupted": True})
        sys.stderr.write(f"\ninterrupted; saved the run so far to {args.out}\n")
        raise SystemExit(130)
    save_run(args.out, spec, model, history, info)
    print(f"saved {args.out}/ ({time.monotonic() - began:.1f} s)")


def _progress(event, elapsed: float) -> None:
    done = event.step / event.total_steps
    bar = "#" * int(done * 30)
    sys.stderr.write(f"\r[{bar:<30}] {done:4.0%} epoch {event.epoch} step {event.step}/{event.total_steps} "
                     f"loss {event.loss:.4f} {elapsed:5.1f}s")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.self_test or args.command is None:
        from gui.app import run_app

        return run_app(self_test=args.self_test)
    from engine.errors import LumenError

    try:
        if args.command == "presets":
            cmd_presets()
        elif args.command == "summary":
            cmd_summary(args.model)
        elif args.command == "train":
            cmd_train(args)
    except LumenError as exc:
        sys.stderr.write(f"lumen: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
