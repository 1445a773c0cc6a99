"""``python main.py likelihood``: an RBM run's average log-likelihood per validation example as the last line, exact
and AIS agreeing within a nat on a trained rbm16, and what it cannot measure refused in one line with exit 1. Run
folders are trained here as a user makes them (rbm16: one epoch; the others: two batches)."""

import re
from pathlib import Path

import pytest

from tests.support import lumen, one_line_error

ROOT = Path(__file__).resolve().parents[2]
LAST_LINE = re.compile(
    r"^(-\d+\.\d\d) nats per example \((exact|ais, -\d+\.\d\d to -\d+\.\d\d), 16 hidden units, "
    r"500 validation samples of mnist\)$"
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """rbm16 trained one epoch by plain SGD (the likelihood climbs from about -550 to about -180); rbm (128 hidden
    units), dbn and lenet5 two batches each, one after the other (two shared cores)."""
    folder = tmp_path_factory.mktemp("likelihood")
    env = {"OMP_NUM_THREADS": "1", "LUMEN_DATA_DIR": str(tmp_path_factory.mktemp("lumen-data"))}
    commands = {
        "rbm16": ["--epochs", "1", "--optimizer", "sgd", "--lr", "0.05", "--batch-size", "32"],
        "rbm": ["--epochs", "1", "--steps", "2"],
        "dbn": ["--epochs", "1", "--steps", "2"],
        "lenet5": ["--epochs", "1", "--steps", "2"],
    }
    paths = {}
    for name, options in commands.items():
        paths[name] = folder / name
        result = lumen("train", name, *options, "--out", paths[name], env=env)
        assert result.returncode == 0, result.stderr
    return paths


def nats(result) -> float:
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    match = LAST_LINE.match(last)
    assert match, last
    return float(match.group(1))


def test_the_exact_figure_is_the_last_line(runs):
    result = lumen("likelihood", runs["rbm16"])
    value = nats(result)
    assert result.stdout.strip().splitlines()[-1].endswith("(exact, 16 hidden units, 500 validation samples of mnist)")
    assert "summed over 2^16 = 65,536 hidden states" in result.stdout
    assert -300 < value < -100


def test_exact_and_ais_agree_within_a_nat(runs):
    exact = nats(lumen("likelihood", runs["rbm16"], "--method", "exact"))
    ais = lumen("likelihood", runs["rbm16"], "--method", "ais", "--chains", 100, "--betas", 2000, "--data", "mnist")
    assert abs(nats(ais) - exact) < 1.0
    assert "by AIS (100 chains, 2,000 inverse temperatures, seed 0)" in ais.stdout


def test_exact_is_refused_beyond_twenty_hidden_units(runs):
    one_line_error(lumen("likelihood", runs["rbm"], "--method", "exact"), "128 hidden units, more than 20", "ais")


def test_runs_other_than_a_single_rbm_are_refused(runs):
    one_line_error(lumen("likelihood", runs["lenet5"]), "no rbm layer")
    one_line_error(lumen("likelihood", runs["dbn"]), "stacks 2 RBMs", "not a DBN's or DBM's")


def test_ais_options_with_the_exact_method_are_a_usage_error(runs):
    one_line_error(lumen("likelihood", runs["rbm16"], "--method", "exact", "--betas", 10), "--method ais", status=2)


def test_data_of_another_shape_is_refused(runs):
    one_line_error(lumen("likelihood", runs["rbm16"], "--data", "sine"), "takes 1×28×28 inputs")
