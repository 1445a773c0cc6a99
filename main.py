"""Lumen: build, train and look inside neural networks.

    python main.py                      the window
    python main.py --self-test          open the window offscreen, train a step, render a frame, exit
    python main.py presets              list the model presets
    python main.py summary MODEL [--input C,H,W]     layer table of a preset or a spec JSON file
    python main.py train MODEL --data mnist --epochs N --out RUN_DIR
    python main.py import MODEL WEIGHTS_FILE --out RUN_DIR     a run folder from a state dict
    python main.py export RUN_DIR --format torchscript|onnx|python|safetensors --out FILE
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
    summary.add_argument("--input", metavar="C,H,W", help="another input shape (one sample), e.g. 1,32,32")
    train = commands.add_parser("train", help="train a model headless and save the run")
    train.add_argument("model", help="a preset name or a model spec JSON file")
    train.add_argument("--data", default="mnist", help="bundled dataset (default: mnist)")
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument("--out", required=True, type=Path, help="run folder to write")
    train.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default: 0.001)")
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--seed", type=int, default=0)
    imports = commands.add_parser("import", help="make a run folder from a .pth/.pt state dict or .safetensors")
    imports.add_argument("model", help="the preset name or model spec JSON file the weights belong to")
    imports.add_argument("weights", type=Path, help="a state dict: .pth/.pt (read weights-only) or .safetensors")
    imports.add_argument("--out", required=True, type=Path, help="run folder to write")
    export = commands.add_parser("export", help="write a run's model as TorchScript, ONNX, Python or safetensors")
    export.add_argument("run", type=Path, help="a run folder (from train or import)")
    export.add_argument("--format", required=True, choices=["torchscript", "onnx", "python", "safetensors"])
    export.add_argument("--out", required=True, type=Path, help="file to write")
    return parser


def load_model_arg(model: str):
    from engine.presets import PRESETS, get_preset
    from engine.spec.model_spec import ModelSpec

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


def cmd_summary(model: str, input_shape: str | None = None) -> None:
    from engine.layers import fmt

    spec = load_model_arg(model)
    if input_shape is not None:
        spec = with_input_shape(spec, parse_shape(input_shape))
    try:
        from engine.graph.analysis import analyze
    except ImportError:  # the analysis module is optional: parameters only
        analyze = None
    if analyze is not None:
        reports = analyze(spec)
        params = [r.params for r in reports]
        table = [("name", "type", "output shape", "params", "MACs", "receptive field")]
        table += [(r.id, r.type, fmt(r.output_shape), f"{r.params:,}", f"{r.macs:,}",
                   "" if r.receptive_field is None else str(r.receptive_field)) for r in reports]
    else:
        from engine.graph.model import summarize

        rows = summarize(spec)
        params = [r.params for r in rows]
        table = [("name", "type", "output shape", "params")]
        table += [(r.name, r.type, fmt(r.output_shape), f"{r.params:,}") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    print(f"{spec.name}: {spec.description}" if spec.description else spec.name)
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(w) if k < 3 else cell.rjust(w)
                        for k, (cell, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"total params: {sum(params)}")


def parse_shape(text: str) -> tuple[int, ...]:
    from engine.errors import LumenError

    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise LumenError(f"--input takes whole numbers above 0 separated by commas, like 1,28,28; got {text!r}")
    return tuple(int(p) for p in parts)


def with_input_shape(spec, shape: tuple[int, ...]):
    """The spec with its input node taking ``shape``; a shape the layers cannot take names the node."""
    import dataclasses

    from engine.errors import SpecError
    from engine.graph.model import infer_shapes
    from engine.layers import fmt

    old = spec.input_node
    new = dataclasses.replace(old, params={**old.params, "shape": list(shape)})
    spec = dataclasses.replace(spec, nodes=tuple(new if n is old else n for n in spec.nodes))
    try:
        infer_shapes(spec)
    except SpecError as exc:
        raise SpecError(f"{exc} (with input {fmt(shape)})") from None
    return spec


def cmd_train(args: argparse.Namespace) -> None:
    import torch

    from engine.data.datasets import load_dataset
    from engine.runtime.events import EpochMetrics, StepMetrics
    from engine.graph.model import build_model
    from engine.io.runs import check_run_dir, save_run
    from engine.training.loop import TrainConfig, Training

    check_run_dir(args.out)  # before training, so a bad --out loses no work
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
                print(f"epoch {event.epoch}: train {_measures(event.train)}  val {_measures(event.val)}", flush=True)
    except KeyboardInterrupt:
        save_run(args.out, spec, model, history, {**info, "interrupted": True})
        sys.stderr.write(f"\ninterrupted; saved the run so far to {args.out}\n")
        raise SystemExit(130)
    save_run(args.out, spec, model, history, info)
    print(f"saved {args.out}/ ({time.monotonic() - began:.1f} s)")


def cmd_import(args: argparse.Namespace) -> None:
    from engine.io.runs import import_run

    spec = load_model_arg(args.model)
    import_run(spec, args.weights, args.out)
    print(f"saved {args.out}/ ({spec.name}, weights from {args.weights.name})")


def cmd_export(args: argparse.Namespace) -> None:
    from engine.io.export import export_run

    export_run(args.run, args.format, args.out)
    print(f"wrote {args.out}")


def _progress(event, elapsed: float) -> None:
    done = event.step / event.total_steps
    bar = "#" * int(done * 30)
    sys.stderr.write(f"\r[{bar:<30}] {done:4.0%} epoch {event.epoch} step {event.step}/{event.total_steps} "
                     f"{_measures(event.values)} {elapsed:5.1f}s")
    sys.stderr.flush()


def _measures(values) -> str:
    """Named metrics as one line: ``loss 0.1234 accuracy 0.9688``, in the order the engine gave them."""
    return " ".join(f"{name} {value:.4f}" for name, value in values.items())


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
            cmd_summary(args.model, args.input)
        elif args.command == "train":
            cmd_train(args)
        elif args.command == "import":
            cmd_import(args)
        elif args.command == "export":
            cmd_export(args)
    except LumenError as exc:
        sys.stderr.write(f"lumen: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `python main.py presets | head`: the reader left; that is not an error
        sys.stderr.close()
        sys.exit(0)
