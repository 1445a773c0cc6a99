"""Open saved runs in the real window as a person would, and grab the screen: the check that issue 18's window part
works end to end (docs/screenshot-open-run*.png).

    LUMEN_DATA_DIR=/tmp/demo-data python main.py train lenet5 --epochs 1 --out /tmp/r1 --checkpoint-every 150
    python main.py import resnet18 WEIGHTS --out /tmp/resnet    (random weights will do: tests/cli/test_cli_imagenet.py)
    Xvfb :80 -screen 0 1600x1000x24 &
    LUMEN_DATA_DIR=/tmp/demo-data DISPLAY=:80 QT_QPA_PLATFORM=xcb \
        python tools/open_run_demo.py /tmp/r1 /tmp/resnet PHOTO

Each step waits for what it needs and prints what it saw; ``import -window root`` grabs the whole screen (window
decorations and all) when it is there, else the window grabs itself.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from lumen.engine.events import RunState  # noqa: E402
from lumen.engine.probes.feature_maps import FeatureMapFrame  # noqa: E402
from lumen.engine.training.loop import TrainConfig  # noqa: E402
from lumen.gui.app import configure_pyqtgraph  # noqa: E402
from lumen.gui.main_window import MainWindow  # noqa: E402
from tools.screenshots import drop, pump  # noqa: E402


def wait(app: QApplication, what: str, condition, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        pump(app, 0.05)
    print(f"ok: {what}", flush=True)


def shoot(window: MainWindow, name: str) -> Path:
    path = ROOT / "docs" / name
    if shutil.which("import") and os.environ.get("QT_QPA_PLATFORM") == "xcb":
        subprocess.run(["import", "-window", "root", str(path)], check=True)
    else:
        window.grab().save(str(path))
    print(f"wrote {path}", flush=True)
    return path


def main() -> None:
    run, imagenet_run, photo = (Path(p) for p in sys.argv[1:4])
    configure_pyqtgraph()
    app = QApplication(sys.argv)
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "demo.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    window.resize(1600, 960)
    window.move(0, 0)
    window.show()
    viewer, monitor = window.viewer, window.monitor
    wait(app, "the window's first feature maps", lambda: viewer.frame is not None)

    drop(window, run)  # a run trained by the CLI
    wait(app, f"{run} opened", lambda: window.opened_run is not None)
    wait(app, "its curves", lambda: "loss" in monitor.plots and monitor.plots["loss"].steps > 0)
    wait(app, "its checkpoints on the slider", lambda: len(viewer.replay_steps) >= 2)
    wait(app, "feature maps of its weights", lambda: isinstance(viewer.frame, FeatureMapFrame))
    pump(app, 1.5)
    print("checkpoints:", viewer.replay_steps, "| status:", window.status_label.text())
    shoot(window, "screenshot-open-run.png")

    viewer.replay_slider.setValue(0)  # the earliest checkpoint
    first = viewer.replay_steps[0]
    wait(app, f"checkpoint step {first} replayed", lambda: getattr(viewer.frame, "checkpoint_step", None) == first)
    pump(app, 1.0)
    shoot(window, "screenshot-open-run-replay.png")
    viewer.go_live()

    window.ask_keep_weights = lambda event: True  # "Continue from these weights"
    window.monitor.config = lambda: TrainConfig(epochs=1, max_steps=150, batch_size=64)
    window.train_action.trigger()
    wait(app, "training continued", lambda: window.state is RunState.TRAINING)
    wait(app, "the continued run finished", lambda: window.state is RunState.FINISHED, timeout=120)
    pump(app, 1.0)
    print("after continuing:", window.status_label.text())
    shoot(window, "screenshot-open-run-continued.png")

    drop(window, imagenet_run)
    wait(app, f"{imagenet_run} opened", lambda: window.opened_run is not None and window.opened_run.classes == 1000)
    drop(window.viewer, photo)  # a photo dropped on the viewer, as a person would
    wait(
        app,
        "ImageNet names in the top predictions",
        lambda: isinstance(viewer.frame, FeatureMapFrame) and viewer.frame.source == photo.name,
        timeout=120,
    )
    pump(app, 1.5)
    print("top:", viewer.frame.predictions[:5])
    shoot(window, "screenshot-open-run-imagenet.png")
    window.close()


if __name__ == "__main__":
    main()
