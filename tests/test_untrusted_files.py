"""Every .pt file tapkit reads is untrusted input (run folders and models are shared): it is read
with `torch.load(weights_only=True)`; a file that holds code is refused before anything in it runs,
and a torch file with other content gives one InputError that names the file instead of a state-dict
key dump."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.serialization import get_unsafe_globals_in_checkpoint

import tapkit.ssl.training_checkpoint
from tapkit import InputError
from tapkit.course import config as course
from tapkit.course.own_movie import epochs_done
from tapkit.course.saved_heads import get_event_heads, get_event_runs, heads_path, save_event_heads
from tapkit.downstream.events.crops import split_pairs
from tapkit.course.reuse import reuse_same_training
from tapkit.downstream.events.experiments import compare_strategies
from tapkit.downstream.events.run_store import RunStore, to_state
from tapkit.ssl.checkpoint import (
    UntrustedFileError,
    load_checkpoint,
    read_torch_file,
    save_checkpoint,
    training_finished,
)
from tapkit.ssl.trainer import load_model, load_tap, train_tap

from test_heads import tiny_tap, toy_pairs
from test_saved_heads import config as heads_config, notebook_04
from test_train import FAST, growing_blobs

SHIPPED = [
    ("tap", "simulated"),
    ("tap", "hela-subset"),
    ("mim", "simulated"),
    ("mim-intensity", "simulated"),
    ("contrastive", "simulated"),
]
TRAIN = dict(steps_linear=4, steps_resnet=4, steps_end_to_end=4, n_evals=4, lr=1e-3)


class RunsCommand:
    """Unpickling it runs a shell command: the classic crafted checkpoint."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class WritesFile(RunsCommand):
    """Unpickling it writes a file through a builtin, no shell."""

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


@pytest.fixture(scope="module")
def data():
    """Toy crop pairs, labels, split and a tiny TAP model (the head tests' data)."""
    pairs, labels = toy_pairs()
    return pairs, labels, split_pairs(labels, seed=0), tiny_tap()


@pytest.fixture(scope="module")
def tap_file(tmp_path_factory) -> Path:
    """A checkpoint written by the trainer: one epoch of 2 steps of a tiny TAP U-Net."""
    path = tmp_path_factory.mktemp("tap") / "tap.pt"
    train_tap(growing_blobs(), epochs=1, steps_per_epoch=2, checkpoint=path, **FAST)
    return path


# Every loader of a .pt file in tapkit (`grep -rn torch.load tapkit scripts`:
# checkpoint.read_torch_file is the only call; these are the ways a notebook or a script reaches
# it), given the file and the toy data.
def _run_store(path, data):
    pairs, labels, split, tap = data
    return RunStore(path.parent, pairs, tap, torch.device("cpu"), TRAIN).load(path)


def _saved_heads(path, data, runs=False):
    pairs, labels, split, tap = data
    cfg = heads_config(path.parent, "05")
    assert heads_path(cfg) == path
    return (get_event_runs if runs else get_event_heads)(cfg, tap, pairs, labels, split)


def _own_model(path, data):
    cfg = course.configure(dict(profile="smoke", device="cpu", out_dir=str(path.parent)), "02")
    assert cfg.out_dir / "tap_simulated.pt" == path
    return course.get_tap_model(cfg)


LOADERS = {
    "read_torch_file": lambda path, data: read_torch_file(path),
    "load_checkpoint": lambda path, data: load_checkpoint(path),
    "load_model": lambda path, data: load_model(path, "cpu"),
    "load_tap": lambda path, data: load_tap(path, "cpu"),
    "resume": lambda path, data: train_tap(
        growing_blobs(), epochs=1, steps_per_epoch=2, checkpoint=path, resume=True, **FAST
    ),
    "reuse": lambda path, data: reuse_same_training(
        path.parent / "new.pt",
        [path],
        "tap",
        growing_blobs(),
        epochs=1,
        steps_per_epoch=2,
        **{k: v for k, v in FAST.items() if k != "progress"},
    ),
    "get_tap_model": _own_model,
    "training_steps": lambda path, data: course.training_steps(path),
    "epochs_done": lambda path, data: epochs_done(path),
    "run_store": _run_store,
    "get_event_heads": _saved_heads,
    "get_event_runs": lambda path, data: _saved_heads(path, data, runs=True),
}
FILE = {
    "get_tap_model": "tap_simulated.pt",
    "get_event_heads": "event_heads_simulated.pt",
    "get_event_runs": "event_heads_simulated.pt",
}  # where these loaders look; the others are given the path


def test_the_payloads_run_code_under_a_full_unpickler(tmp_path):
    """The threat is real: torch.load(weights_only=False) runs them."""
    for payload in (RunsCommand, WritesFile):
        marker = tmp_path / f"{payload.__name__}.marker"
        torch.save({"model": {}, "config": {}, "history": payload(marker)}, tmp_path / "evil.pt")
        torch.load(tmp_path / "evil.pt", weights_only=False)
        assert marker.exists()


@pytest.mark.parametrize("payload", [RunsCommand, WritesFile])
@pytest.mark.parametrize("loader", LOADERS)
def test_a_file_that_holds_code_is_refused_and_nothing_runs(loader, payload, tmp_path, data):
    marker = tmp_path / "pwned"
    path = tmp_path / FILE.get(loader, "evil.pt")
    torch.save(
        {
            "pretext": "tap",
            "config": {},
            "model": {},
            "strategy": "A0",
            "settings": {},
            "results": {},
            "history": payload(marker),
        },
        path,
    )  # looks like any of tapkit's files, plus one object
    with pytest.raises(InputError, match="not a file tapkit wrote") as err:
        LOADERS[loader](path, data)
    assert not marker.exists(), f"{loader} ran the file's code"
    assert isinstance(err.value, UntrustedFileError) and path.name in str(err.value)
    assert ("system" if payload is RunsCommand else "builtins.exec") in str(err.value), err.value


# its callers check
@pytest.mark.parametrize("loader", [name for name in LOADERS if name != "read_torch_file"])
@pytest.mark.parametrize("content", [{"a": 1}, [1, 2]], ids=["dict", "list"])
def test_a_torch_file_with_other_content_is_one_named_input_error(loader, content, tmp_path, data):
    path = tmp_path / FILE.get(loader, "other.pt")
    torch.save(content, path)
    with pytest.raises(InputError, match=str(path.name)) as err:
        LOADERS[loader](path, data)
    # 'not a tapkit model checkpoint', 'not a saved event run', ...
    assert "not a" in str(err.value), err.value


def test_weights_of_another_shape_or_architecture(tap_file, tmp_path):
    state = torch.load(tap_file, weights_only=True)
    name = next(k for k, v in state["model"].items() if v.ndim == 4)
    state["model"][name] = torch.zeros(3, 1, 1, 1)
    save_checkpoint(state, tmp_path / "shape.pt")
    for load in (load_model, load_tap):
        with pytest.raises(
            InputError, match=rf"shape\.pt does not fit.*1 of another shape.*{re.escape(name)}"
        ) as err:
            load(tmp_path / "shape.pt", "cpu")
        assert "Error(s) in loading state_dict" not in str(err.value)
    state = torch.load(tap_file, weights_only=True)
    # the weights of base 8 under a config of base 16
    state["config"] = dict(state["config"], base_filters=16)
    save_checkpoint(state, tmp_path / "config.pt")
    with pytest.raises(InputError, match="config.pt does not fit"):
        load_model(tmp_path / "config.pt", "cpu")
    state["config"] = dict(state["config"], no_such_option=1)
    save_checkpoint(state, tmp_path / "option.pt")
    with pytest.raises(InputError, match="option.pt holds a 'tap' model whose config"):
        load_model(tmp_path / "option.pt", "cpu")


def test_a_file_of_another_kind_is_named(tap_file, tmp_path, data):
    pairs, labels, split, tap = data
    run = compare_strategies(
        pairs, labels, tap, ("A0",), n_runs=1, device="cpu", split=split, **TRAIN
    )["A0"][0]
    save_checkpoint(to_state(run), tmp_path / "run.pt")
    with pytest.raises(InputError, match="run.pt is not a tapkit model checkpoint"):
        load_tap(tmp_path / "run.pt", "cpu")
    with pytest.raises(InputError, match="tap.pt is not a saved event run"):
        _run_store(tap_file, data)
    heads = tmp_path / FILE["get_event_heads"]
    heads.write_bytes(tap_file.read_bytes())
    with pytest.raises(
        InputError,
        match="event_heads_simulated.pt is not a file of event heads saved by notebook 04",
    ):
        _saved_heads(heads, data)
    state = to_state(run)
    first = next(iter(state["weights"]))
    state["weights"][first] = torch.zeros(1)  # a weight of another shape
    save_checkpoint(state, tmp_path / "narrow.pt")
    with pytest.raises(InputError, match="narrow.pt does not fit the A0 head"):
        _run_store(tmp_path / "narrow.pt", data)


def test_saved_heads_with_weights_of_another_shape(tmp_path, data):
    pairs, labels, split, tap = data
    path, _ = notebook_04(heads_config(tmp_path, "04"), data)
    state = torch.load(path, weights_only=True)
    weights = state["results"]["A1"][0]["weights"]
    weights[next(iter(weights))] = torch.zeros(1)
    save_checkpoint(state, path)
    with pytest.raises(InputError, match=f"{path.name} does not fit the A1 head"):
        get_event_heads(heads_config(tmp_path, "05"), tap, pairs, labels, split)


# ------------------------------------------------------- what tapkit writes loads with weights_only
def test_trainer_checkpoint_holds_only_tensors_and_plain_values(tap_file):
    assert get_unsafe_globals_in_checkpoint(tap_file) == []
    state = torch.load(tap_file, weights_only=True)  # plain torch, no allow-list
    assert (
        state["epoch"] == 1
        and training_finished(state)
        and isinstance(state["rng"]["numpy"][1], torch.Tensor)
    )
    model = load_tap(tap_file, "cpu")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state["model"].items())


def test_run_store_and_saved_heads_files_hold_only_tensors_and_plain_values(tmp_path, data):
    pairs, labels, split, tap = data
    runs = compare_strategies(
        pairs,
        labels,
        tap,
        ("A0", "C1"),
        n_runs=1,
        device="cpu",
        split=split,
        runs_dir=tmp_path / "runs",
        **TRAIN,
    )
    files = list((tmp_path / "runs").glob("*.pt"))
    assert len(files) == 2 and all(get_unsafe_globals_in_checkpoint(p) == [] for p in files)
    cfg = heads_config(tmp_path, "04", heads_n_runs=1)
    path = save_event_heads(cfg, {"A0": runs["A0"]}, {"data": "toy"})
    assert get_unsafe_globals_in_checkpoint(path) == []
    again = _run_store(next(p for p in files if p.name.startswith("C1")), data)
    np.testing.assert_array_equal(again.test_logits, runs["C1"][0].test_logits)
    assert again.test_logits.dtype == runs["C1"][0].test_logits.dtype and isinstance(
        again.confusion, np.ndarray
    )


def test_every_shipped_checkpoint_loads_with_weights_only():
    for task, key in SHIPPED:
        path = course.shipped_checkpoint(key, task)
        assert get_unsafe_globals_in_checkpoint(path) == [], path.name
        torch.load(path, weights_only=True)


def test_save_checkpoint_refuses_what_weights_only_cannot_read(tmp_path):
    with pytest.raises(TypeError, match=r"state\['rng'\]\[1\] is a numpy.ndarray"):
        save_checkpoint({"rng": ("MT19937", np.zeros(3))}, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_files_of_earlier_versions_with_numpy_arrays_still_load_but_object_arrays_do_not(tmp_path):
    torch.save(
        {"a": np.arange(3.0), "b": np.int64(2), "rng": np.random.get_state()}, tmp_path / "old.pt"
    )
    old = read_torch_file(tmp_path / "old.pt")
    np.testing.assert_array_equal(old["a"], np.arange(3.0))
    torch.save({"a": np.array([1, "x"], dtype=object)}, tmp_path / "objects.pt")
    with pytest.raises(UntrustedFileError, match="ObjectDType"):
        read_torch_file(tmp_path / "objects.pt")


def test_resume_is_exact_under_weights_only_also_from_an_older_checkpoint(tmp_path, monkeypatch):
    """Interrupted after epoch 1 of 2, then resumed: the weights of one uninterrupted run, also when
    the checkpoint holds numpy's RNG state as a numpy array (written before this version)."""
    run = dict(epochs=2, steps_per_epoch=2, **FAST)
    whole, _ = train_tap(growing_blobs(), checkpoint=tmp_path / "whole.pt", **run)

    def stop_after_epoch_1(state, path):
        save_checkpoint(state, path)
        if state["epoch"] == 1:
            raise KeyboardInterrupt("interrupted")

    monkeypatch.setattr(tapkit.ssl.training_checkpoint, "save_checkpoint", stop_after_epoch_1)
    for name in ("cut.pt", "old.pt"):
        with pytest.raises(KeyboardInterrupt):
            train_tap(growing_blobs(), checkpoint=tmp_path / name, **run)
    monkeypatch.undo()
    old = torch.load(tmp_path / "old.pt", weights_only=True)
    name, keys, *rest = old["rng"]["numpy"]
    old["rng"]["numpy"] = (name, keys.numpy().astype(np.uint32), *rest)  # as tapkit wrote it before
    torch.save(old, tmp_path / "old.pt")
    for name in ("cut.pt", "old.pt"):
        resumed, _ = train_tap(growing_blobs(), checkpoint=tmp_path / name, resume=True, **run)
        assert all(
            torch.equal(a, b)
            for a, b in zip(whole.state_dict().values(), resumed.state_dict().values())
        )
