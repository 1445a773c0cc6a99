"""The recall task separates the families it is meant to: after a gap of 48 distractors drawn from the key's own
letters, an LSTM (its forget bias starting at 1) recalls the flagged first letter and a vanilla RNN does much
worse. The same runs as benchmarks/recall_rnn_vs_lstm.py (docs/PERFORMANCE.md has every length and seed)."""

import importlib.util
from pathlib import Path

import pytest
import torch

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "recall_rnn_vs_lstm.py"


@pytest.mark.slow
def test_an_lstm_recalls_across_a_gap_of_48_where_a_vanilla_rnn_falls_behind():
    spec = importlib.util.spec_from_file_location("recall_benchmark", BENCHMARK)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        lstm, _ = benchmark.run("lstm", 50, seed=0, epochs=15, budget_s=120)
        rnn, _ = benchmark.run("rnn", 50, seed=0, epochs=15, budget_s=120)
    finally:
        torch.set_num_threads(threads)
    assert lstm >= 0.9, f"LSTM {lstm:.2f}"
    assert lstm - rnn >= 0.25, f"LSTM {lstm:.2f} vs RNN {rnn:.2f}"
