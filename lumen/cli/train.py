"""``lumen train MODEL --out RUN``: train headless, record the run in the run store, write the run folder;
``train --resume RUN``: an interrupted run trained on from its last checkpoint. Under ``torch.distributed.run``
each process trains its share of every batch and only rank 0 prints and writes.

Ctrl-C, SIGTERM or a closed stdout save the run so far, marked interrupted, and exit 128 + the signal's number
(``cli.stopping``)."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from pathlib import Path

from lumen.cli.common import load_model_arg, note, one_line
from lumen.cli.parser import MAX_BATCH, MAX_SEED, Command, whole
from lumen.cli.stopping import StopRequest, interrupted_exit_code, signals_held


def define(parser: argparse.ArgumentParser) -> None:
    from lumen.engine.training.config import OPTIMIZERS, SCHEDULES
    from lumen.engine.training.objectives import OBJECTIVES

    parser.add_argument("model", nargs="?", help="a preset name or a model spec JSON file")
    parser.add_argument(
        "--data",
        default=None,
        help="a built-in dataset (see 'datasets'), an image folder, an IDX or a CSV file (default: the preset's)",
    )
    parser.add_argument("--epochs", type=int, default=5)  # TrainConfig.check says what is wrong
    parser.add_argument("--out", type=Path, help="run folder to write (new, empty, or with --force an existing run)")
    parser.add_argument(
        "--resume", metavar="RUN", help="continue an interrupted run (an id from 'runs') from its checkpoint"
    )
    parser.add_argument(
        "--checkpoint-every",
        type=whole(0, 10**9),
        default=0,
        metavar="N",
        help="checkpoint every N steps into the run store (default 0: at an epoch's end, at most one every 5 s)",
    )
    parser.add_argument("--force", action="store_true", help="replace the run already in --out")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (default: 0.001)")
    parser.add_argument("--batch-size", type=whole(1, MAX_BATCH), default=64)
    parser.add_argument("--seed", type=whole(0, MAX_SEED), default=0)
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD's momentum (default: 0.9)")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--schedule", choices=SCHEDULES, default="none")
    parser.add_argument("--steps", type=whole(0, 10**9), default=0, help="stop after N batches (0: every epoch)")
    parser.add_argument("--patience", type=whole(0, 10**6), default=0, help="early stopping after N epochs (0: off)")
    parser.add_argument("--clip", type=float, default=0.0, help="clip the gradient norm to this (0: off)")
    parser.add_argument(
        "--truncate", type=whole(0, 10**6), default=0, help="RNNs: backpropagate through at most N steps (0: all)"
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument(
        "--objective",
        default=None,
        choices=list(OBJECTIVES),
        help="what to minimise (default: the preset's, or what the data calls for)",
    )
    parser.add_argument("--cd-k", type=whole(1, 1000), default=1, help="Boltzmann machines: Gibbs steps (CD-k)")
    parser.add_argument("--pcd", action="store_true", help="Boltzmann machines: persistent chains (PCD-k)")
    parser.add_argument("--beta", type=float, default=1.0, help="VAE: weight of the KL term")


def refuse(args: argparse.Namespace) -> str | None:
    """A new run needs MODEL and --out; a resumed one has both."""
    if args.resume or (args.model is not None and args.out is not None):
        return None
    missing = " and ".join(name for name, value in (("MODEL", args.model), ("--out", args.out)) if value is None)
    return f"train needs {missing} (or --resume RUN)"


def run(args: argparse.Namespace) -> None:
    if args.resume:
        resume(args)
    else:
        train(args)


def train(args: argparse.Namespace) -> None:
    import torch

    from lumen.engine.data.files import check_out_of_data
    from lumen.engine.errors import LumenError
    from lumen.engine.graph import budget
    from lumen.engine.graph.model import build_model
    from lumen.engine.io.runs import check_run_dir
    from lumen.engine.io.store import RunStore
    from lumen.engine.runtime.recording import Recording
    from lumen.engine.training import distributed
    from lumen.engine.training.fit import load_run_data, plan_run
    from lumen.engine.training.loop import TrainConfig, Training, resolve_device
    from lumen.engine.untrusted import printable

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
        note(f"lumen: {printable(plan.line())}\n")
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
        note(f"data-parallel over {group.size} processes ({group.backend}); rank 0 writes the run\n")
    note(
        f"training {printable(spec.name)} on {printable(data.name)} ({plan.objective}, {config.optimizer}, {device})\n"
    )
    info = {"dataset": data.name, "objective": plan.objective, "fitted": list(plan.changes), "config": vars(config)}
    # The run store keeps what --resume needs: how the data was named, where the run folder goes.
    kept = {**info, "data_arg": args.data, "out": str(args.out.absolute()), "force": args.force}
    reports = _Reports()
    recording = Recording(RunStore, reports, checkpoint_every=args.checkpoint_every)
    recording.start(spec, data.name, training, {**kept, "checkpoint_every": args.checkpoint_every})
    if recording.run_id is not None:  # run.json names the run, so that its resume knows the folder for its own
        reports.run_id = info["run_id"] = recording.run_id
        note(f"run {recording.run_id} (resume with: lumen train --resume {recording.run_id})\n")
    try:
        _train_and_save(training, spec, model, [], info, args.out, args.force, recording, group)
    finally:
        if group is not None:
            group.close()


def _leave_together(group, refusal) -> None:
    """Every process of a data-parallel run exits 1 at the same moment, rank 0 after printing why: the launcher
    then reports each exit code instead of stopping the slower processes with SIGTERM (its own summary of the
    failed processes follows; it cannot be turned off from here)."""
    if refusal is not None:  # rank 0: the others print nowhere
        note(f"lumen: {one_line(str(refusal))}\n")
    with contextlib.suppress(Exception):  # a process already gone: leave anyway
        group.barrier()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    os._exit(1)  # not sys.exit: interpreter shutdown takes the slower process past the launcher's next look


class _Reports:
    """What ``Recording`` reports, as the command line says it: the run store refused at the start, or failed
    during the run; training goes on either way."""

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id  # the recorded run's id, once there is one

    def __call__(self, when: str, error: Exception) -> None:
        reason = one_line(str(error))
        if self.run_id is None:
            note(f"lumen: the run is not recorded in the run store: {reason}\n")
        else:
            note(f"\nlumen: the run store stopped recording run {self.run_id}, training goes on: {reason}\n")


def _train_and_save(
    training, spec, model, history: list, info: dict, out: Path, force: bool, recording, group=None
) -> None:
    """Train to the end (recording metrics and checkpoints in the run store), then write the run folder ``out``;
    Ctrl-C or SIGTERM checkpoint and save what there is; a failure marks the recorded run failed.

    Ctrl-C and SIGTERM stop the run between batches, once the last one is recorded: the run folder and the
    checkpoint then agree with the store, and a resumed run records every step once. A second signal while a
    batch is being computed stops at once; the store's last checkpoint (consistent with its metrics) is kept.
    Data-parallel (``group``), another process that dies fails the batch's collective: rank 0 saves the run so
    far as SIGTERM would, says so in one line and exits 1."""
    from lumen.engine.errors import LumenError
    from lumen.engine.events import EpochMetrics, StepMetrics
    from lumen.engine.io.runs import save_run
    from lumen.engine.untrusted import printable

    def ended(status: str, message: str, checkpoint: bool = True) -> None:
        recording.close(status, message, training, checkpoint)

    began = time.monotonic()
    stop = StopRequest()
    restore_signals = stop.install()  # Ctrl-C and SIGTERM now stop training between batches
    try:
        for event in stop.guarded(training.steps()):
            history.append(event)
            recording.record(event, training)  # and a checkpoint when one is due
            if isinstance(event, StepMetrics):
                _progress(event, time.monotonic() - began)
            elif isinstance(event, EpochMetrics):
                sys.stderr.write("\n")
                print(f"epoch {event.epoch}: train {_measures(event.train)}  val {_measures(event.val)}", flush=True)
            stop.check()  # a stop asked for during that batch: now, with everything up to it recorded
    except (KeyboardInterrupt, BrokenPipeError) as exc:
        restore_signals()
        code = interrupted_exit_code(exc)
        with signals_held():  # a second Ctrl-C must not cut the save short
            ended("stopped", f"interrupted at step {training.step}", checkpoint=not stop.abrupt)
            save_run(out, spec, model, history, {**info, "interrupted": True}, force=force)
        note(f"\ninterrupted; saved the run so far to {printable(str(out))}\n")
        raise SystemExit(code) from None
    except LumenError as exc:  # a non-finite loss: the last good checkpoint stays
        restore_signals()
        ended("failed", str(exc), checkpoint=False)
        raise
    except RuntimeError as exc:  # gloo or NCCL: a peer left mid-batch, before the update (DDP syncs in backward)
        if group is None:
            raise
        restore_signals()
        with signals_held():
            ended("stopped", f"another process of the run stopped at step {training.step}")
            save_run(out, spec, model, history, {**info, "interrupted": True}, force=force)
        cause = re.sub(r"^\[[^\]]*\]\s*", "", (str(exc).strip().splitlines() or [""])[0])  # gloo's source line
        cause = cause.split(". ")[0][:160] or type(exc).__name__
        note(
            f"\nlumen: another process of the data-parallel run stopped ({one_line(cause)}); "
            f"saved the run so far to {printable(str(out))}\n"
        )
        raise SystemExit(1) from None
    restore_signals()
    with signals_held():
        ended("finished", f"finished at step {training.step}")
        save_run(out, spec, model, history, info, force=force)
    print(f"saved {printable(str(out))}/ ({time.monotonic() - began:.1f} s)")


def resume(args: argparse.Namespace) -> None:
    """``train --resume RUN``: the run's last checkpoint in the run store, trained on to its end."""
    from lumen.engine.errors import DataError
    from lumen.engine.graph.model import build_model
    from lumen.engine.io.runs import check_run_dir
    from lumen.engine.io.store import INFO_FILE, SPEC_FILE, RunRecorder, RunStore, latest_checkpoint, load_checkpoint
    from lumen.engine.runtime.recording import Recording
    from lumen.engine.spec.model_spec import ModelSpec
    from lumen.engine.training import distributed
    from lumen.engine.training.fit import load_run_data
    from lumen.engine.training.loop import TrainConfig, Training
    from lumen.engine.training.resume import restore_training
    from lumen.engine.untrusted import printable, read_json

    if distributed.world_size() > 1:  # N copies would each train and write the same run
        if distributed.rank_from_env() != 0:
            # Rank 0 prints the refusal. The others leave quietly with 0: a rank that failed first would make the
            # launcher kill rank 0 before it printed anything. The launcher still exits 1, from rank 0.
            raise SystemExit(0)
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
    every = int(info.get("checkpoint_every") or 0)
    recording = Recording(lambda: store, _Reports(row.id), checkpoint_every=every)
    recording.follow(RunRecorder(store, store.run(row.id)))  # the run goes on
    note(f"resuming run {row.id} ({printable(row.model)} on {printable(row.data)}) at step {training.step}\n")
    keep = {k: info[k] for k in ("dataset", "objective", "fitted", "config") if k in info}
    _train_and_save(training, spec, training.model, history, {**keep, "run_id": row.id}, out, force, recording)


def _same_run(out: Path, run_id: str) -> bool:
    """Whether the run folder ``out`` was written by this recorded run (then a resume may replace it)."""
    from lumen.engine.errors import LumenError
    from lumen.engine.io.runs import RUN_FILE
    from lumen.engine.untrusted import read_json

    try:
        info = read_json(out / RUN_FILE, "run record")  # never blocks (a FIFO there), size-limited
    except (LumenError, OSError):
        return False
    return isinstance(info, dict) and info.get("run_id") == run_id


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


COMMAND = Command("train", "train a model headless and save the run", define, run, refuse)
