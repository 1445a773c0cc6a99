"""Lumen: build, train and look inside neural networks.

    python main.py                      the window
    python main.py RUN_DIR | SPEC.json  the window, opened on a run folder (its weights, curves, checkpoints) or a spec
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
    python main.py gates RUN_DIR (--sample K | --sequence F.csv | --text T) --out G.npz   LSTM/GRU/RNN gates
    python main.py sample RUN_DIR --n N [--steps K] --out GRID.png [--npy S.npy]   VAE prior or RBM/DBN Gibbs samples
    python main.py reconstruct RUN_DIR --image FILE [--mask MASK.png] --out OUT.png   an autoencoder's reconstruction
    python main.py neighbours RUN_DIR --image FILE --k 8 --out GRID.png   the nearest training pictures in latent space
    python main.py likelihood RUN_DIR [--data NAME|PATH] [--method exact|ais] [--chains N] [--betas N]   an RBM's nats
    python main.py runs                 the run store's runs; train --resume RUN continues one

Each command is a module of ``lumen/cli/``; this module parses and dispatches (``main.py`` at the top of the
repository, the installed ``lumen`` command and ``python -m lumen`` all come here). Errors are one line on stderr
(``lumen: …``) and a non-zero exit: 1 for a refused input, 2 for a bad command line. ``train`` stopped by Ctrl-C,
SIGTERM or a closed stdout (``train … | head -1``) saves the run so far, marked interrupted, and exits 128 + the
signal's number: 130 (SIGINT), 143 (SIGTERM), 141 (SIGPIPE, the reader left).
"""

from __future__ import annotations

import sys
from pathlib import Path

from lumen import cli
from lumen.cli.parser import parse


def opened_path(argv: list[str]) -> str | None:
    """The run folder or spec file a command line of one argument names (what a file manager's "open with" passes),
    or None when it is a command line of commands and options. A path that does not exist exits 2 in one line."""
    if len(argv) != 1 or argv[0].startswith("-") or argv[0] in {c.name for c in cli.COMMANDS}:
        return None
    path = Path(argv[0])
    if path.is_dir() or (path.suffix.lower() == ".json" and path.is_file()):
        return argv[0]
    if path.suffix.lower() == ".json" or "/" in argv[0] or "\\" in argv[0]:
        sys.stderr.write(f"lumen: {argv[0]!r}: no such run folder or spec file (see 'python main.py --help')\n")
        raise SystemExit(2)
    return None  # an unknown command: the parser says so


def main(argv: list[str] | None = None) -> int:
    path = opened_path(sys.argv[1:] if argv is None else argv)
    if path is not None:
        from lumen.gui.app import run_app

        return run_app(open_path=path)
    args = parse(cli.COMMANDS, argv)
    if args.self_test is not None or args.command is None:
        from lumen.gui.app import run_app

        return run_app(self_test=args.self_test)
    return cli.run(args)


def console() -> None:
    """The process's whole life: ``main``'s status as the exit status."""
    try:
        sys.exit(main())
    except BrokenPipeError:  # `lumen presets | head`: the reader left; that is not an error
        sys.stderr.close()
        sys.exit(0)
