"""The preview every dataset gets before training: made on the worker's thread when the data loads."""

import threading
import time

import numpy as np

from lumen.engine.data.datasets import load_dataset
from lumen.engine.data.preview import CURVES, IMAGES, TOKENS, DatasetPreview, dataset_preview
from lumen.engine.events import RunState, StatusChanged
from lumen.engine.presets import get_preset
from lumen.engine.runtime.worker import EngineWorker


def test_images_make_a_grid_in_range_with_their_labels():
    data = load_dataset("mnist")
    preview = dataset_preview(data, count=8)
    assert preview.kind == IMAGES and preview.array.shape == (2 * 29 - 1, 4 * 29 - 1)
    assert preview.array.dtype == np.float32 and 0 <= preview.array.min() and preview.array.max() <= 1
    assert preview.labels == tuple(data.classes[int(v)] for v in data.val_y[:8])


def test_token_sequences_read_as_text_and_real_ones_as_curves():
    brackets = dataset_preview(load_dataset("brackets", steps=10))
    assert brackets.kind == TOKENS and all(set(row) <= set("()") and len(row) == 10 for row in brackets.rows)
    text = dataset_preview(load_dataset("text", steps=16))
    data = load_dataset("text", steps=16)
    first = "".join(data.classes[i] for i in data.val_x[0].argmax(1)).replace("\n", "⏎")
    assert text.rows[0] == first
    sine = dataset_preview(load_dataset("sine"), count=3)
    assert sine.kind == CURVES and sine.array.shape == (3, 40, 1) and sine.labels == ()


def test_the_worker_sends_the_preview_from_its_own_thread_when_data_loads():
    events, threads = [], []

    def sink(event):
        if isinstance(event, DatasetPreview):
            threads.append(threading.current_thread().name)
        events.append(event)

    worker = EngineWorker(sink, torch_threads=1)
    worker.start()
    try:
        worker.load_model(get_preset("lstm_many_to_one"), "recall")
        for _ in range(600):
            if any(isinstance(e, DatasetPreview) for e in events):
                break
            time.sleep(0.05)
        previews = [e for e in events if isinstance(e, DatasetPreview)]
        assert len(previews) == 1 and previews[0].name == "recall" and previews[0].kind == TOKENS
        assert threads == ["lumen-engine"]
        assert any(isinstance(e, StatusChanged) and e.state is RunState.IDLE for e in events)
    finally:
        assert worker.shutdown(10)
