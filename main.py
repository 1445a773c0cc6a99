"""Lumen: build, train and look inside neural networks.

    python main.py                      the window
    python main.py --self-test [PRESET] open the window offscreen, train a few steps, draw and export every view, exit
    python main.py presets              list the model presets
    python main.py datasets             list the built-in datasets
    python main.py summary MODEL [--input C,H,W]     layer table of a preset or a spec JSON file
    python main.py train MODEL [--data NAME|PATH] [--optimizer adam|adamw|sgd] [--schedule ...] [--device auto|cpu|cuda]
                         --epochs N --out RUN_DIR     without --data, the preset's own dataset
    python main.py import MODEL WEIGHTS_FILE --out RUN_DIR     a run folder from a state dict
    python main.py export RUN_DIR --format torchscript|onnx|python|safetensors --out FILE
    python main.py explain RUN_DIR --image FILE --method NAME --out OUT.png [--npy OUT.npy]   an attribution map
    python main.py activations RUN_DIR --image FILE --layer NAME --out GRID.png [--npy MAPS.npy]   a layer's maps
    python main.py dream RUN_DIR --layer NAME [--channel C] [--image FILE] --out IMG.png   DeepDream

Errors are one line on stderr (``lumen: …``) and a non-zero exit: 1 for a refused input, 2 for a bad command
line. ``train`` stopped by Ctrl-C, SIGTERM or a closed stdout (``train … | head -1``) saves the run so far, marked
interrupted, and exits 128 + the signal's number: 130 (SIGINT), 143 (SIGTERM), 141 (SIGPIPE, the reader left).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

MAX_SEED = 2**63 - 1  # torch's generators take 64 bits
MAX_BATCH = 2**31 - 1
# engine.explain.attribution.METHODS, named here so the parser needs no torch (tests check they agree).
EXPLAIN_METHODS = ("saliency", "smoothgrad", "integrated-gradients", "gradcam", "occlusion", "guided-backprop")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line instead of usage + error
        self.exit(2, f"lumen: {message} (see 'python main.py --help')\n")


def _whole(low: int, high: int):
    """An argparse type: a whole number in [low, high], refused in one line otherwise."""

    def parse(text: str) -> int:
        digits = text.strip()
        if (
            not (digits.lstrip("-").isascii() and digits.lstrip("-").isdigit() and len(digits) <= 20)
            or not low <= int(digits) <= high
        ):
            shown = text if len(text) <= 24 else text[:20] + "…"
            raise argparse.ArgumentTypeError(f"takes a whole number from {low:,} to {high:,}, got {shown!r}")
        return int(digits)

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lumen", description="Build, train and look inside neural networks.")
    parser.add_argument(
        "--self-test",
        nargs="?",
        const="lenet5",
        metavar="PRESET",
        help="open the main window offscreen with PRESET (default lenet5), train a few steps, show and export every "
        "view that applies, exit 0 if every one drew and nothing raised",
    )
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    commands.add_parser("presets", help="list the model presets")
    commands.add_parser("datasets", help="list the built-in datasets")
    commands.add_parser("runs", help="list the runs in the run store (id, model, data, status, best metric)")
    summary = commands.add_parser("summary", help="print a model's layer table")
    summary.add_argument("model", help="a preset name (see 'presets') or a model spec JSON file")
    summary.add_argument("--input", metavar="C,H,W", help="another input shape (one sample), e.g. 1,32,32")
    train = commands.add_parser("train", help="train a model headless and save the run")
    train.add_argument("model", nargs="?", help="a preset name or a model spec JSON file")
    train.add_argument(
        "--data",
        default=None,
        help="a built-in dataset (see 'datasets'), an image folder, an IDX or a CSV file (default: the preset's)",
    )
    train.add_argument("--epochs", type=int, default=5)  # TrainConfig.check says what is wrong
    train.add_argument("--out", type=Path, help="run folder to write (new, empty, or with --force an existing run)")
    train.add_argument(
        "--resume", metavar="RUN", help="continue an interrupted run (an id from 'runs') from its checkpoint"
    )
    train.add_argument(
        "--checkpoint-every",
        type=_whole(0, 10**9),
        default=0,
        metavar="N",
        help="checkpoint every N steps into the run store (default 0: at each epoch's end)",
    )
    train.add_argument("--force", action="store_true", help="replace the run already in --out")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate (default: 0.001)")
    train.add_argument("--batch-size", type=_whole(1, MAX_BATCH), default=64)
    train.add_argument("--seed", type=_whole(0, MAX_SEED), default=0)
    train.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam")
    train.add_argument("--momentum", type=float, default=0.9, help="SGD's momentum (default: 0.9)")
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--schedule", choices=["none", "step", "cosine", "plateau"], default="none")
    train.add_argument("--steps", type=_whole(0, 10**9), default=0, help="stop after N batches (0: every epoch)")
    train.add_argument("--patience", type=_whole(0, 10**6), default=0, help="early stopping after N epochs (0: off)")
    train.add_argument("--clip", type=float, default=0.0, help="clip the gradient norm to this (0: off)")
    train.add_argument(
        "--truncate", type=_whole(0, 10**6), default=0, help="RNNs: backpropagate through at most N steps (0: all)"
    )
    train.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    train.add_argument(
        "--objective",
        default=None,
        choices=["classification", "forecast", "seq2seq", "autoencoder", "rbm", "dbn", "dbm"],
        help="what to minimise (default: the preset's, or what the data calls for)",
    )
    train.add_argument("--cd-k", type=_whole(1, 1000), default=1, help="Boltzmann machines: Gibbs steps (CD-k)")
    train.add_argument("--pcd", action="store_true", help="Boltzmann machines: persistent chains (PCD-k)")
    train.add_argument("--beta", type=float, default=1.0, help="VAE: weight of the KL term")
    imports = commands.add_parser("import", help="make a run folder from a .pth/.pt state dict or .safetensors")
    imports.add_argument("model", help="the preset name or model spec JSON file the weights belong to")
    imports.add_argument("weights", type=Path, help="a state dict: .pth/.pt (read weights-only) or .safetensors")
    imports.add_argument("--out", required=True, type=Path, help="run folder to write")
    imports.add_argument("--force", action="store_true", help="replace the run already in --out")
    imports.add_argument(
        "--classes",
        choices=["imagenet", "none"],
        help="name the outputs with a bundled list (default: imagenet for the full-size presets, else none)",
    )
    export = commands.add_parser("export", help="write a run's model as TorchScript, ONNX, Python or safetensors")
    export.add_argument("run", type=Path, help="a run folder (from train or import)")
    export.add_argument("--format", required=True, choices=["torchscript", "onnx", "python", "safetensors"])
    export.add_argument("--out", required=True, type=Path, help="file to write")
    explain = commands.add_parser("explain", help="an attribution map: which pixels of an image made the class")
    explain.add_argument("run", type=Path, help="a run folder (from train or import)")
    explain.add_argument("--image", required=True, type=Path, help="PNG, JPEG, BMP, GIF, TIFF or WebP")
    explain.add_argument("--method", required=True, choices=EXPLAIN_METHODS)
    explain.add_argument("--target", type=_whole(0, 10**6), help="the class explained (default: the predicted one)")
    explain.add_argument("--steps", type=_whole(1, 4096), help="integrated gradients: path steps (default 50)")
    explain.add_argument("--baseline", choices=["black", "blur", "noise"], help="integrated gradients (default black)")
    explain.add_argument("--samples", type=_whole(1, 512), help="smoothgrad: noisy copies (default 16)")
    explain.add_argument("--window", type=_whole(1, 4096), help="occlusion: patch side in pixels")
    explain.add_argument("--stride", type=_whole(1, 4096), help="occlusion: patch step in pixels")
    explain.add_argument("--layer", help="gradcam: the conv layer (default: the last one)")
    explain.add_argument("--out", required=True, type=Path, help="PNG to write: the input beside the overlay")
    explain.add_argument(
        "--npy", type=Path, help="also write the map at input resolution; the input tensor goes to NAME.input.npy"
    )
    activations = commands.add_parser("activations", help="a layer's activations for an image, as a grid of maps")
    activations.add_argument("run", type=Path, help="a run folder (from train or import)")
    activations.add_argument("--image", required=True, type=Path, help="PNG, JPEG, BMP, GIF, TIFF or WebP")
    activations.add_argument("--layer", required=True, help="any layer (node id) of the model, e.g. conv1 or fc1")
    activations.add_argument("--after-activation", action="store_true", help="the maps after the layer's ReLU")
    activations.add_argument("--out", required=True, type=Path, help="PNG to write: the maps tiled, blue−white−red")
    activations.add_argument("--npy", type=Path, help="also write the raw activation (C×H×W, or the layer's shape)")
    dream = commands.add_parser("dream", help="DeepDream: amplify what a layer (or one channel) sees")
    dream.add_argument("run", type=Path, help="a run folder (from train or import)")
    dream.add_argument("--layer", required=True, help="the layer (node id) to excite")
    dream.add_argument("--channel", type=_whole(0, 10**6), help="one channel of the layer (default: the whole layer)")
    dream.add_argument("--image", type=Path, help="the picture to dream on (default: grey noise)")
    dream.add_argument("--octaves", type=_whole(1, 12), default=3)
    dream.add_argument("--steps", type=_whole(1, 10_000), default=20, help="steps per octave (default: 20)")
    dream.add_argument("--out", required=True, type=Path, help="PNG to write")
    return parser


def load_model_arg(model: str):
    from engine.presets import PRESETS, get_preset
    from engine.spec.model_spec import ModelSpec

    if model in PRESETS:
        return get_preset(model)
    try:
        is_path = Path(model).exists() or Path(model).is_symlink() or model.lower().endswith(".json")
    except (OSError, ValueError):  # a name too long for the file system, say: a path, and ModelSpec.load says why
        is_path = True
    if is_path:
        return ModelSpec.load(model)  # every check of engine.io.untrusted: regular file, size, depth, numbers
    return get_preset(model)  # raises with the list of presets


def cmd_presets() -> None:
    from engine.presets import PRESETS

    width = max(len(name) for name in PRESETS)
    for preset in PRESETS.values():
        print(f"{preset.name:<{width}}  {preset.summary}")


def _memory_warning(spec, nodes) -> str | None:
    """Why the model cannot be built here (too big for the memory limit), or None; ``nodes``: (id, params,
    bytes of one sample's output) per node."""
    from engine.errors import SpecError
    from engine.graph import budget

    try:
        budget.check(budget.estimate(nodes))
    except SpecError as exc:
        return str(exc)
    return None


def cmd_datasets() -> None:
    from engine.data.datasets import DATASETS  # imports neither torch nor numpy

    width = max(len(name) for name in DATASETS)
    for entry in DATASETS.values():
        print(f"{entry.name:<{width}}  {entry.summary}")


def cmd_summary(model: str, input_shape: str | None = None) -> None:
    from engine.spec.shapes import fmt

    spec = load_model_arg(model)
    if input_shape is not None:
        spec = with_input_shape(spec, parse_shape(input_shape))
    from engine.graph.analysis import analyze

    reports = analyze(spec)
    params = [r.params for r in reports]
    table = [("name", "type", "output shape", "params", "MACs", "receptive field")]
    table += [
        (
            r.id,
            r.type,
            fmt(r.output_shape),
            f"{r.params:,}",
            f"{r.macs:,}",
            "" if r.receptive_field is None else str(r.receptive_field),
        )
        for r in reports
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    from engine.io.untrusted import printable

    name, description = printable(spec.name), printable(spec.description)
    print(f"{name}: {description}" if description else name)
    for i, row in enumerate(table):
        print(
            "  ".join(
                cell.ljust(w) if k < 3 else cell.rjust(w) for k, (cell, w) in enumerate(zip(row, widths))
            ).rstrip()
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"total params: {sum(params)}")
    warning = _memory_warning(spec, [(r.id, r.params, r.activation_bytes) for r in reports])
    if warning:
        sys.stdout.flush()
        sys.stderr.write(f"lumen: warning: {printable(warning)}; it can be summarised but not built or trained here\n")


def parse_shape(text: str) -> tuple[int, ...]:
    from engine.errors import LumenError
    from engine.io.untrusted import printable
    from engine.spec.model_spec import MAX_SIZE

    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 8 or not all(
        p.isascii() and p.isdigit() and len(p) <= 12 and 0 < int(p) <= MAX_SIZE for p in parts
    ):
        shown = printable(text if len(text) <= 40 else text[:36] + "…")
        raise LumenError(
            f"--input takes whole numbers above 0 separated by commas, like 1,28,28; got {shown!r} "
            f"(at most 8 numbers, each up to {MAX_SIZE:,})"
        )
    return tuple(int(p) for p in parts)


def with_input_shape(spec, shape: tuple[int, ...]):
    """The spec with its input node taking ``shape``; a shape the layers cannot take names the node."""
    import dataclasses

    from engine.errors import SpecError
    from engine.graph.model import infer_shapes
    from engine.spec.shapes import fmt

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

    from engine.data.files import check_out_of_data
    from engine.errors import LumenError
    from engine.graph import budget
    from engine.graph.model import build_model
    from engine.io.runs import check_run_dir
    from engine.io.untrusted import printable
    from engine.training import distributed
    from engine.training.fit import load_run_data, plan_run
    from engine.training.loop import TrainConfig, Training, resolve_device

    # Under torch.distributed.run only rank 0 prints and writes the run folder: it alone checks --out, before the
    # process group starts, and every process stops on its refusal as soon as the group has started (agree).
    main_rank = distributed.rank_from_env() == 0
    if not main_rank:
        sys.stdout = sys.stderr = open(os.devnull, "w")  # for the life of this process
    refusal = None
    try:
        if main_rank:
            check_run_dir(args.out, args.force)  # before training, so a bad --out loses no work
            check_out_of_data(args.data, args.out)  # a run folder inside an image folder would be a class next time
    except LumenError as exc:
        if distributed.world_size() <= 1:
            raise
        refusal = exc
    spec = load_model_arg(args.model)
    config = TrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        optimizer=args.optimizer,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        patience=args.patience,
        max_steps=args.steps,
        clip_grad_norm=args.clip,
        truncation=args.truncate,
        device=args.device,
        objective=args.objective,
        cd_k=args.cd_k,
        persistent=args.pcd,
        beta=args.beta,
    )
    config.check()
    group = distributed.init_from_env(config.device)  # under torch.distributed.run: one process of N
    if group is not None:
        if group.agree(refusal) is not None:  # rank 0 refused --out: every process stops, each with exit 1
            _leave_together(group, refusal)
        config = group.config_for(config)
    device = resolve_device(config.device)
    data, preferred = load_run_data(spec, args.data)
    plan = plan_run(spec, data, config.objective, preferred)  # resized to the data; refused naming the node
    if plan.changes:
        _note(f"lumen: {printable(plan.line())}\n")
    spec = plan.spec
    torch.manual_seed(config.seed)
    model = build_model(spec)  # refuses, before allocating, a model too big for this machine
    budget.check_model(model, min(config.batch_size, len(data.train_x)), training=True)
    training = Training(model, data, config, plan.objective)
    if group is not None:
        group.wrap(training)  # DistributedDataParallel, and this rank's share of every global batch
        if not group.is_main:
            for _ in training.steps():
                pass
            group.close()
            return
        _note(f"data-parallel over {group.size} processes ({group.backend}); rank 0 writes the run\n")
    _note(
        f"training {printable(spec.name)} on {printable(data.name)} ({plan.objective}, {config.optimizer}, {device})\n"
    )
    info = {"dataset": data.name, "objective": plan.objective, "fitted": list(plan.changes), "config": vars(config)}
    # The run store keeps what --resume needs: how the data was named, where the run folder goes.
    kept = {**info, "data_arg": args.data, "out": str(args.out.absolute()), "force": args.force}
    recorder = _start_recording(spec, data.name, training, kept, args.checkpoint_every)
    if recorder is not None:  # run.json names the run, so that its resume knows the folder for its own
        info["run_id"] = recorder.id
    try:
        _train_and_save(training, spec, model, [], info, args.out, args.force, recorder, group)
    finally:
        if group is not None:
            group.close()


def _leave_together(group, refusal) -> None:
    """Every process of a data-parallel run exits 1 at the same moment, rank 0 after printing why: the launcher
    then reports each exit code instead of stopping the slower processes with SIGTERM (its own summary of the
    failed processes follows; it cannot be turned off from here)."""
    if refusal is not None:  # rank 0: the others print nowhere
        _note(f"lumen: {_one_line(str(refusal))}\n")
    with contextlib.suppress(Exception):  # a process already gone: leave anyway
        group.barrier()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    os._exit(1)  # not sys.exit: interpreter shutdown takes the slower process past the launcher's next look


def _start_recording(spec, data_name: str, training, info: dict, checkpoint_every: int):
    """The run's recorder in the run store, or None (with a note) when the store cannot be opened."""
    from engine.errors import LumenError
    from engine.io.store import RunRecorder, RunStore

    try:
        recorder = RunRecorder.start(
            RunStore(),
            spec,
            data_name,
            training.objective.name,
            training.total_steps,
            {**info, "checkpoint_every": checkpoint_every},
            checkpoint_every=checkpoint_every,
        )
    except LumenError as exc:
        _note(f"lumen: the run is not recorded in the run store: {_one_line(str(exc))}\n")
        return None
    _note(f"run {recorder.id} (resume with: lumen train --resume {recorder.id})\n")
    return _Unfailing(recorder)


class _Unfailing:
    """A ``RunRecorder`` whose store failing mid-run (damaged, locked, read-only: a ``StoreError``) stops the
    recording with one line on stderr, while training goes on; the run folder is written as usual."""

    def __init__(self, recorder):
        self.recorder = recorder
        self.id = recorder.id
        self.failed = False

    @property
    def closed(self) -> bool:
        return self.failed or self.recorder.closed

    def checkpoint_due(self, step: int, steps_per_epoch: int) -> bool:
        return not self.closed and self.recorder.checkpoint_due(step, steps_per_epoch)

    def record(self, event) -> None:
        self._call(self.recorder.record, event)

    def checkpoint(self, *state) -> None:
        self._call(self.recorder.checkpoint, *state)

    def close(self, status: str, message: str = "") -> None:
        self._call(self.recorder.close, status, message)

    def _call(self, method, *args) -> None:
        from engine.io.store import StoreError

        if self.closed:
            return
        try:
            method(*args)
        except StoreError as exc:
            self.failed = True
            _note(f"\nlumen: the run store stopped recording run {self.id}, training goes on: {_one_line(str(exc))}\n")


def _train_and_save(
    training, spec, model, history: list, info: dict, out: Path, force: bool, recorder, group=None
) -> None:
    """Train to the end (recording metrics and checkpoints in the run store), then write the run folder ``out``;
    Ctrl-C or SIGTERM checkpoint and save what there is; a failure marks the recorded run failed.

    Ctrl-C and SIGTERM stop the run between batches, once the last one is recorded: the run folder and the
    checkpoint then agree with the store, and a resumed run records every step once. A second signal while a
    batch is being computed stops at once; the store's last checkpoint (consistent with its metrics) is kept.
    Data-parallel (``group``), another process that dies fails the batch's collective: rank 0 saves the run so
    far as SIGTERM would, says so in one line and exits 1."""
    from engine.errors import LumenError
    from engine.io.runs import save_run
    from engine.io.untrusted import printable
    from engine.runtime.events import EpochMetrics, StepMetrics
    from engine.training.resume import training_state

    def ended(status: str, message: str, checkpoint: bool = True) -> None:
        if recorder is not None and not recorder.closed:
            if checkpoint:
                recorder.checkpoint(*training_state(training))
            recorder.close(status, message)

    began = time.monotonic()
    stop = _StopRequest()
    restore_signals = stop.install()  # Ctrl-C and SIGTERM now stop training between batches
    try:
        for event in stop.guarded(training.steps()):
            history.append(event)
            if recorder is not None:
                recorder.record(event)
                if isinstance(event, StepMetrics) and recorder.checkpoint_due(event.step, training.steps_per_epoch):
                    recorder.checkpoint(*training_state(training))
            if isinstance(event, StepMetrics):
                _progress(event, time.monotonic() - began)
            elif isinstance(event, EpochMetrics):
                sys.stderr.write("\n")
                print(f"epoch {event.epoch}: train {_measures(event.train)}  val {_measures(event.val)}", flush=True)
            stop.check()  # a stop asked for during that batch: now, with everything up to it recorded
    except (KeyboardInterrupt, BrokenPipeError) as exc:
        restore_signals()
        code = _interrupted_exit_code(exc)
        with _signals_held():  # a second Ctrl-C must not cut the save short
            ended("stopped", f"interrupted at step {training.step}", checkpoint=not stop.abrupt)
            save_run(out, spec, model, history, {**info, "interrupted": True}, force=force)
        _note(f"\ninterrupted; saved the run so far to {printable(str(out))}\n")
        raise SystemExit(code) from None
    except LumenError as exc:  # a non-finite loss: the last good checkpoint stays
        restore_signals()
        ended("failed", str(exc), checkpoint=False)
        raise
    except RuntimeError as exc:  # gloo or NCCL: a peer left mid-batch, before the update (DDP syncs in backward)
        if group is None:
            raise
        restore_signals()
        with _signals_held():
            ended("stopped", f"another process of the run stopped at step {training.step}")
            save_run(out, spec, model, history, {**info, "interrupted": True}, force=force)
        cause = re.sub(r"^\[[^\]]*\]\s*", "", (str(exc).strip().splitlines() or [""])[0])  # gloo's source line
        cause = cause.split(". ")[0][:160] or type(exc).__name__
        _note(
            f"\nlumen: another process of the data-parallel run stopped ({_one_line(cause)}); "
            f"saved the run so far to {printable(str(out))}\n"
        )
        raise SystemExit(1) from None
    restore_signals()
    with _signals_held():
        ended("finished", f"finished at step {training.step}")
        save_run(out, spec, model, history, info, force=force)
    print(f"saved {printable(str(out))}/ ({time.monotonic() - began:.1f} s)")


def cmd_resume(args: argparse.Namespace) -> None:
    """``train --resume RUN``: the run's last checkpoint in the run store, trained on to its end."""
    from engine.errors import DataError
    from engine.graph.model import build_model
    from engine.io.runs import check_run_dir
    from engine.io.store import INFO_FILE, SPEC_FILE, RunRecorder, RunStore, latest_checkpoint, load_checkpoint
    from engine.io.untrusted import printable, read_json
    from engine.spec.model_spec import ModelSpec
    from engine.training import distributed
    from engine.training.fit import load_run_data
    from engine.training.loop import TrainConfig, Training
    from engine.training.resume import restore_training

    if distributed.world_size() > 1:  # N copies would each train and write the same run
        if distributed.rank_from_env() != 0:
            sys.stdout = sys.stderr = open(os.devnull, "w")  # the refusal is printed once, by rank 0
        raise DataError("train --resume goes on in one process; run it without torch.distributed.run")
    store = RunStore()
    row = store.find(args.resume)
    if row.status == "running":
        raise DataError(f"run {row.id} is still running (process {row.pid} on {row.host})")
    if row.status == "finished":
        raise DataError(f"run {row.id} has finished; there is nothing to resume")
    folder = Path(row.folder)
    info = read_json(folder / INFO_FILE, "the run's settings")
    # The run folder is checked before anything changes (README: before the first batch). The run's own folder,
    # saved when it was interrupted (its run.json names the run), is replaced by the finished run.
    if args.out is None and not isinstance(info.get("out"), str):  # a run the window started has no folder
        raise DataError(f"run {row.id} has no run folder of its own; name one with --out")
    out = Path(args.out) if args.out is not None else Path(info["out"])
    force = bool(args.force or info.get("force")) or _same_run(out, row.id)
    check_run_dir(out, force)
    spec = ModelSpec.load(folder / SPEC_FILE)
    checkpoint = latest_checkpoint(folder)
    if checkpoint is None:
        raise DataError(f"run {row.id} has no checkpoint yet; start it again")
    tensors, meta = load_checkpoint(checkpoint)
    config = TrainConfig(**info["config"])
    data, _ = load_run_data(spec, info.get("data_arg"))
    training = Training(build_model(spec), data, config, info["objective"])
    restore_training(training, tensors, meta)
    store.forget_after(row.id, training.step)
    store.set_status(row.id, "running", f"resumed at step {training.step}")
    history = store.history(row.id)
    recorder = RunRecorder(store, store.run(row.id), checkpoint_every=int(info.get("checkpoint_every") or 0))
    _note(f"resuming run {row.id} ({printable(row.model)} on {printable(row.data)}) at step {training.step}\n")
    keep = {k: info[k] for k in ("dataset", "objective", "fitted", "config") if k in info}
    _train_and_save(training, spec, training.model, history, {**keep, "run_id": row.id}, out, force, recorder)


def _same_run(out: Path, run_id: str) -> bool:
    """Whether the run folder ``out`` was written by this recorded run (then a resume may replace it)."""
    from engine.errors import LumenError
    from engine.io.runs import RUN_FILE
    from engine.io.untrusted import read_json

    try:
        info = read_json(out / RUN_FILE, "run record")  # never blocks (a FIFO there), size-limited
    except (LumenError, OSError):
        return False
    return isinstance(info, dict) and info.get("run_id") == run_id


def cmd_runs() -> None:
    from engine.io.store import RunStore
    from engine.io.untrusted import printable

    with RunStore() as store:
        rows = store.runs()
    if not rows:
        print("no runs yet (train one: lumen train MODEL --out RUN)")
        return
    table = [("id", "model", "data", "status", "best", "steps")]
    table += [(r.id, r.model, r.data, r.status, r.best(), f"{r.step}/{r.total_steps}") for r in rows]
    widths = [max(len(printable(row[i])) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(printable(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be."""


class _StopRequest:
    """Ctrl-C and SIGTERM while training. The first asks the run to stop at the next batch boundary (``check``,
    called once a batch's metrics are recorded and checkpointed), so what is saved and what the store holds cover
    the same steps; a second one that comes while a batch is computed stops at once (``abrupt``)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.in_batch = False
        self.abrupt = False

    def install(self):
        """Route Ctrl-C and SIGTERM here; returns the function that puts the old handlers back. (Only the main
        thread may set handlers: elsewhere, as in a test calling main() from a thread, nothing changes.)"""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.signal(sig, self._signalled) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _signalled(self, signum, frame) -> None:
        if self.signum is not None and self.in_batch:
            self.abrupt = True
            raise _Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        self.signum = self.signum or signum

    def guarded(self, events):
        """``events`` (a training's steps), marking the time spent computing each one."""
        iterator = iter(events)
        while True:
            self.in_batch = True
            try:
                event = next(iterator)
            except StopIteration:
                return
            finally:
                self.in_batch = False
            yield event

    def check(self) -> None:
        """Stop now (raise as Ctrl-C would) if a signal asked for it."""
        if self.signum is not None:
            raise _Terminated() if self.signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def _signals_held():
    """Ignore Ctrl-C and SIGTERM while a run is being saved (it takes a moment and must not be cut short)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupted_exit_code(exc: BaseException) -> int:
    """128 + the signal, as a shell reports a process the signal ended; a closed stdout counts as SIGPIPE."""
    if isinstance(exc, BrokenPipeError):
        _silence_stdout()
        return 128 + signal.SIGPIPE
    return 128 + (signal.SIGTERM if isinstance(exc, _Terminated) else signal.SIGINT)


def _silence_stdout() -> None:
    """The reader of stdout has gone: send the rest to /dev/null, so the exit's flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _note(text: str) -> None:
    """A message on stderr, if anyone still reads it."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(text)
        sys.stderr.flush()


def cmd_import(args: argparse.Namespace) -> None:
    from engine.io.runs import import_run
    from engine.io.untrusted import printable
    from engine.spec.preprocess import IMAGENET

    spec = load_model_arg(args.model)
    classes = args.classes
    if classes is None and spec.preprocess == IMAGENET:  # a full-size preset: torchvision's ImageNet weights
        classes = "imagenet"
    import_run(spec, args.weights, args.out, force=args.force, classes=None if classes == "none" else classes)
    named = f", {classes} class names" if classes not in (None, "none") else ""
    print(printable(f"saved {args.out}/ ({spec.name}, weights from {args.weights.name}{named})"))


def cmd_export(args: argparse.Namespace) -> None:
    from engine.io.export import export_run
    from engine.io.untrusted import printable

    export_run(args.run, args.format, args.out)
    print(f"wrote {printable(str(args.out))}")


def cmd_explain(args: argparse.Namespace) -> None:
    import numpy as np
    from PIL import Image

    from engine.data.images import image_input
    from engine.errors import DataError
    from engine.explain.attribution import attribute, black_picture_input
    from engine.explain.overlay import overlay
    from engine.io.image_files import read_image
    from engine.io.runs import open_run, read_run_info, run_classes
    from engine.io.untrusted import atomic_writes, printable

    input_path = None if args.npy is None else args.npy.with_name(args.npy.name.removesuffix(".npy") + ".input.npy")
    written = _check_outputs(("--out", args.out), ("--npy", args.npy), ("--npy's input file", input_path))
    info = read_run_info(args.run)
    model = open_run(args.run)
    shape = tuple(model.spec.input_shape)
    if len(shape) != 3:
        raise DataError(f"{printable(model.spec.name)} takes {shape} inputs, not images")
    pixels = read_image(args.image)
    digits = info.get("dataset") == "mnist" and shape[0] == 1

    def prepare(p: np.ndarray):
        return image_input(p, shape, digits=digits, preprocess=model.spec.preprocess)

    x = prepare(pixels)
    given = {
        "steps": args.steps,
        "baseline": args.baseline,
        "samples": args.samples,
        "window": args.window,
        "stride": args.stride,
        "layer": args.layer,
    }
    options = {name: value for name, value in given.items() if value is not None}
    if args.method in ("integrated-gradients", "occlusion"):
        options["black"] = black_picture_input(prepare, pixels)
    result = attribute(model, x, args.method, args.target, **options)
    picture = overlay(result.input, result.heat())
    with atomic_writes(written) as temps:  # all or none
        Image.fromarray(picture).save(temps[0], format="PNG")
        for temp, array in zip(temps[1:], (result.map, result.input)):
            _save_npy(temp, array)
    delta = f", convergence delta {result.delta:.3g}" if result.delta is not None else ""
    layer = f", layer {result.layer}" if result.layer else ""
    files = ", ".join(printable(str(p)) for p in written)
    names = run_classes(info)
    named = f" ({printable(names[result.target])})" if result.target < len(names) else ""
    print(f"{args.method} for class {result.target}{named}{layer}{delta}: wrote {files}")
    if names:
        import torch

        from engine.explain.activations import top_k

        with torch.no_grad():
            best = top_k(model(x), names, 3)
        if best:
            print("top: " + ", ".join(f"{printable(name)} {p:.1%}" for name, p in best))


def _image_for(run_dir: Path, image: Path):
    """A run's model and an image file prepared as its input (1×C×H×W), as ``explain`` prepares it."""
    from engine.data.images import image_input
    from engine.errors import DataError
    from engine.io.image_files import read_image
    from engine.io.runs import open_run, read_run_info
    from engine.io.untrusted import printable

    info = read_run_info(run_dir)
    model = open_run(run_dir)
    shape = tuple(model.spec.input_shape)
    if len(shape) != 3:
        raise DataError(f"{printable(model.spec.name)} takes {shape} inputs, not images")
    digits = info.get("dataset") == "mnist" and shape[0] == 1
    return model, image_input(read_image(image), shape, digits=digits, preprocess=model.spec.preprocess)


def _check_outputs(*outputs: tuple[str, Path | None]) -> list[Path]:
    """The files a command will write, as (the option that named it, path or None when not asked for): each one
    checked before any work (a folder, a missing folder, no permission, two options naming one file), so that
    they are written all or none."""
    from engine.errors import DataError
    from engine.io.untrusted import check_writable, printable

    seen: dict[str, str] = {}
    paths = []
    for flag, path in outputs:
        if path is None:
            continue
        check_writable(path, flag)
        same = seen.setdefault(os.path.realpath(path), flag)
        if same != flag:
            raise DataError(f"{same} and {flag} name the same file, {printable(str(path))}; give each its own")
        paths.append(path)
    return paths


def _save_npy(path: Path, array) -> None:
    import numpy as np

    with open(path, "wb") as f:
        np.save(f, array)


def _write_png(path: Path, pixels) -> None:
    from PIL import Image

    from engine.io.untrusted import atomic_write

    with atomic_write(path) as temp:
        Image.fromarray(pixels).save(temp, format="PNG")


def cmd_activations(args: argparse.Namespace) -> None:
    from PIL import Image

    from engine.explain.activations import activation_after, activations, as_maps, check_layers, mosaic_picture
    from engine.io.untrusted import atomic_writes, printable
    from engine.probes.feature_maps import tile

    written = _check_outputs(("--out", args.out), ("--npy", args.npy))
    model, x = _image_for(args.run, args.image)
    check_layers(model, [args.layer])
    node = (activation_after(model, args.layer) if args.after_activation else None) or args.layer
    raw = activations(model, x, [node])[node]
    maps = as_maps(raw)
    mosaic, (rows, cols) = tile(maps)
    with atomic_writes(written) as temps:  # all or none
        Image.fromarray(mosaic_picture(mosaic)).save(temps[0], format="PNG")
        if args.npy is not None:
            _save_npy(temps[1], raw)
    files = ", ".join(printable(str(p)) for p in written)
    what = f"{printable(args.layer)}" + (f" (after {printable(node)})" if node != args.layer else "")
    print(
        f"{what}: {maps.shape[0]} maps of {maps.shape[1]}×{maps.shape[2]} in a {rows}×{cols} grid, "
        f"range {float(raw.min()):.3g} to {float(raw.max()):.3g}: wrote {files}"
    )


def cmd_dream(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from engine.explain.dream import DreamSettings, dream
    from engine.explain.jobs import display_image
    from engine.io.runs import open_run
    from engine.io.untrusted import printable

    _check_outputs(("--out", args.out))
    if args.image is not None:
        model, x = _image_for(args.run, args.image)
    else:
        model = open_run(args.run)
        shape = tuple(model.spec.input_shape)
        generator = torch.Generator().manual_seed(0)
        x = (0.5 + 0.1 * torch.randn(1, *shape, generator=generator)).clamp(0, 1)
    picture = dream(model, x, args.layer, args.channel, DreamSettings(octaves=args.octaves, steps=args.steps))
    image = display_image(picture)
    pixels = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    factor = max(1, -(-256 // min(pixels.shape[:2])))  # small inputs (28×28) enlarged to be seen
    _write_png(args.out, pixels.repeat(factor, 0).repeat(factor, 1))
    target = f"channel {args.channel} of {printable(args.layer)}" if args.channel is not None else printable(args.layer)
    print(f"deepdream of {target}: {args.octaves} octaves × {args.steps} steps: wrote {printable(str(args.out))}")


def _progress(event, elapsed: float) -> None:
    done = event.step / event.total_steps
    bar = "#" * int(done * 30)
    sys.stderr.write(
        f"\r[{bar:<30}] {done:4.0%} epoch {event.epoch} step {event.step}/{event.total_steps} "
        f"{_measures(event.values)} {elapsed:5.1f}s"
    )
    sys.stderr.flush()


def _measures(values) -> str:
    """Named metrics as one line: ``loss 0.1234 accuracy 0.9688``, in the order the engine gave them."""
    return " ".join(f"{name} {value:.4f}" for name, value in values.items())


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "train" and not args.resume and (args.model is None or args.out is None):
        missing = " and ".join(name for name, value in (("MODEL", args.model), ("--out", args.out)) if value is None)
        parser.error(f"train needs {missing} (or --resume RUN)")
    if args.self_test is not None or args.command is None:
        from gui.app import run_app

        return run_app(self_test=args.self_test)
    from engine.errors import LumenError

    try:
        if args.command == "presets":
            cmd_presets()
        elif args.command == "datasets":
            cmd_datasets()
        elif args.command == "summary":
            cmd_summary(args.model, args.input)
        elif args.command == "train" and args.resume:
            cmd_resume(args)
        elif args.command == "train":
            cmd_train(args)
        elif args.command == "runs":
            cmd_runs()
        elif args.command == "import":
            cmd_import(args)
        elif args.command == "export":
            cmd_export(args)
        elif args.command == "explain":
            cmd_explain(args)
        elif args.command == "activations":
            cmd_activations(args)
        elif args.command == "dream":
            cmd_dream(args)
    except LumenError as exc:
        _note(f"lumen: {_one_line(_from_file(args, exc))}\n")
        return 1
    except MemoryError:
        _note("lumen: out of memory\n")
        return 1
    except BrokenPipeError:
        raise  # the reader of stdout left: handled below, as before
    except OSError as exc:  # a file system error no check foresaw (the disk went away, ...): still one line
        where = f"{exc.filename}: " if exc.filename else ""
        _note(f"lumen: {_one_line(where + (exc.strerror or str(exc)))}\n")
        return 1
    return 0


def _from_file(args: argparse.Namespace, exc: Exception) -> str:
    """The message, led by the spec file's name when the model came from a file and the message lacks it (a
    model refused after loading: too big, or not fit for the loss)."""
    from engine.errors import SpecError
    from engine.presets import PRESETS

    model = getattr(args, "model", None)
    message = str(exc)
    if isinstance(exc, SpecError) and model and model not in PRESETS:
        name = Path(model).name
        if not message.startswith(f"{name}: ") and not message.startswith(f"{name} "):
            return f"{name}: {message}"
    return message


def _one_line(text: str) -> str:
    """Text from anywhere (a file name, a spec's name) as one line a terminal shows as it is."""
    from engine.io.untrusted import printable

    return printable(text)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `python main.py presets | head`: the reader left; that is not an error
        sys.stderr.close()
        sys.exit(0)
