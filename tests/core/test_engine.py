"""Engine pieces: seeds, schedules, EMA, checkpoints, and batch-independent prediction."""

from __future__ import annotations

import argparse

import pytest
import torch

from segbench import SegbenchError
from segbench.data.prepare import SplitData
from segbench.io.checkpoints import load_checkpoint, save_checkpoint
from segbench.engine.device import Runtime, eval_batch_cap, resolve_precision
from segbench.engine.evaluation import predict_split
from segbench.engine.training import EMA, Checkpointing, TrainingDiverged, train, warmup_cosine
from segbench.plan.run_plan import EvaluationPlan
from segbench.training_settings import TrainingSettings, ema_decay_for
from segbench.seeds import derive_seed, sample_seed
from tests.toy_plugin import ToyCNN

CPU = Runtime(torch.device("cpu"), "fp32")


def _evaluation(ensemble: int = 1, batch_size: int = 4) -> EvaluationPlan:
    return EvaluationPlan(None, batch_size, ensemble, 0.5)


def _data(n=6, size=16):
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(n, size, size, generator=g) * 255).to(torch.uint8).numpy()
    masks = (torch.rand(n, size, size, generator=g) > 0.7).to(torch.uint8).numpy()
    return SplitData([f"s{i}" for i in range(n)], images, masks)


def test_sample_seed_is_stable_and_distinct():
    assert sample_seed(0, "test/1") == sample_seed(0, "test/1")
    assert len({sample_seed(0, "test/1"), sample_seed(1, "test/1"), sample_seed(0, "test/2"),
                sample_seed(0, "test/1", member=1)}) == 4
    assert 0 <= derive_seed("x") < 2**63
    # Fixed value: seeds must not change between versions, or old runs could not be reproduced.
    assert sample_seed(0, "test/0") == derive_seed("sample", 0, "test/0", 0)


def test_warmup_cosine_shape():
    f = warmup_cosine(100, 0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5, abs=0.02) and f(100) == pytest.approx(0.0, abs=1e-9)


def test_training_is_deterministic_and_checkpointed(tmp_path):
    weights = []
    for run in range(2):
        torch.manual_seed(0)
        model = ToyCNN(4, 0.0)
        train(model, _data(), TrainingSettings(epochs=2, batch_size=3), seed=5, runtime=CPU, checkpointing=Checkpointing(tmp_path / str(run)))
        weights.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])
    saved = load_checkpoint(tmp_path / "0" / "last.pt")
    assert saved["epoch"] == 2 and len(saved["losses"]) == 2


def test_resume_from_checkpoint_matches_uninterrupted(tmp_path):
    torch.manual_seed(0)
    full = ToyCNN(4, 0.0)
    train(full, _data(), TrainingSettings(epochs=3, batch_size=3), seed=5, runtime=CPU)

    def interrupt(epoch, loss):
        if epoch == 0:
            raise KeyboardInterrupt

    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train(ToyCNN(4, 0.0), _data(), TrainingSettings(epochs=3, batch_size=3), seed=5, runtime=CPU,
              checkpointing=Checkpointing(tmp_path), on_epoch=interrupt)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    torch.manual_seed(1)  # a different init: everything must come from the checkpoint
    resumed = ToyCNN(4, 0.0)
    train(resumed, _data(), TrainingSettings(epochs=3, batch_size=3), seed=5, runtime=CPU, checkpointing=Checkpointing(tmp_path, resume=True))
    for a, b in zip(full.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)


def test_ema_tracks_weights():
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, decay=0.5)
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(2.0)
    ema.update(model)
    torch.testing.assert_close(ema.shadow["weight"], before + 1.0)


def test_ema_decay_is_capped_to_the_run_length():
    assert ema_decay_for(0.99, 480) == 0.99  # the small preset's 16 epochs of 30 steps: unchanged
    assert ema_decay_for(0.9999, 100) == pytest.approx(0.01 ** (1 / 100)) and ema_decay_for(0.0, 100) == 0.0


def test_short_run_ema_forgets_the_initial_weights():
    """A decay of 0.9999 over 4 steps would keep 99.96 % of the random start; the engine's EMA
    uses the capped decay d: final weights = d^4 w_0 + sum_k (1 - d) d^(4-k) w_k."""
    torch.manual_seed(0)
    model = ToyCNN(4, 0.5)
    weights = [model.net[0].weight.detach().clone()]
    config = TrainingSettings(epochs=2, batch_size=6, lr=0.05, ema_decay=0.9999)
    train(model, _data(12), config, seed=0, runtime=CPU,
          on_step=lambda *_: weights.append(model.net[0].weight.detach().clone()))
    d = config.ema_decay_used(12)
    assert len(weights) == 5 and d == pytest.approx(0.01 ** (1 / 4))
    expected = d**4 * weights[0] + sum((1 - d) * d ** (4 - k) * weights[k] for k in range(1, 5))
    torch.testing.assert_close(model.net[0].weight.detach(), expected)


def test_non_finite_loss_stops_training():
    class Exploding(ToyCNN):
        def training_loss(self, images, masks):
            return super().training_loss(images, masks) * float("nan")

    with pytest.raises(TrainingDiverged, match="epoch 1, step 1"):
        train(Exploding(4, 0.0), _data(), TrainingSettings(epochs=1, batch_size=3), seed=0, runtime=CPU)


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": argparse.Namespace(code="anything")}, path)
    with pytest.raises(SegbenchError, match="refused"):
        load_checkpoint(path)
    save_checkpoint(tmp_path / "ok.pt", {"w": torch.ones(2), "epoch": 1})
    assert load_checkpoint(tmp_path / "ok.pt")["epoch"] == 1


@pytest.mark.parametrize("ensemble", [1, 3])
def test_prediction_is_independent_of_batch_size(ensemble):
    torch.manual_seed(0)
    model = ToyCNN(4, 0.5)
    runs = [predict_split(model, _data(), _evaluation(ensemble, b), run_seed=1, runtime=CPU)
            for b in (1, 4, 64)]
    for other in runs[1:]:
        torch.testing.assert_close(runs[0].probabilities, other.probabilities, rtol=0, atol=1e-6)
    if ensemble > 1:
        assert runs[0].uncertainty is not None and runs[0].uncertainty.max() > 0


def test_device_defaults():
    """auto precision and the default prediction batch cap follow the device (torch.device needs no GPU)."""
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert (resolve_precision("auto", cpu), resolve_precision("auto", cuda)) == ("fp32", "bf16")
    assert (eval_batch_cap(cpu), eval_batch_cap(torch.device("mps")), eval_batch_cap(cuda)) == (32, 32, 256)


def test_a_batch_that_runs_out_of_memory_is_halved_and_redone(monkeypatch):
    """A model that only fits 3 masks at once still predicts every sample: the batch shape is halved until
    it fits (recorded), with the results of batch size 1 within float rounding. Out of memory happens on a
    GPU, where the batch shape is the batch asked for: so here too."""
    monkeypatch.setattr("segbench.engine.evaluation.batch_shape", lambda batch_size, device, precision: batch_size)

    class Small(ToyCNN):
        sizes: list[int] = []

        def predict(self, images, seeds):
            self.sizes.append(len(images))
            if len(images) > 3:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return super().predict(images, seeds)

    torch.manual_seed(0)
    model = Small(4, 0.5)
    capped = predict_split(model, _data(), _evaluation(2, 16), run_seed=1, runtime=CPU)
    # 6 samples x 2 members, padded to the batch shape: 16 -> 8 -> 4 -> 2, then every batch at 2
    assert Small.sizes[:4] == [16, 8, 4, 2] and set(Small.sizes[3:]) == {2} and capped.batch_size == 2
    single = predict_split(model, _data(), _evaluation(2, 1), run_seed=1, runtime=CPU)
    torch.testing.assert_close(capped.probabilities, single.probabilities, rtol=0, atol=1e-6)


class _Fits(ToyCNN):
    """ToyCNN whose training runs out of (simulated) GPU memory above `limit` images; records the
    first random draw of every call (the engine must redo a batch with the random state it started with)."""

    def __init__(self, limit: int) -> None:
        super().__init__(4, 0.5)
        self.limit, self.sizes, self.draws = limit, [], []

    def training_loss(self, images, masks):
        self.sizes.append(len(images))
        self.draws.append(torch.rand(()).item())
        if len(images) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return super().training_loss(images, masks)


def test_a_training_batch_that_runs_out_of_memory_is_accumulated_in_parts(tmp_path):
    """Batches of 6 that only fit 2 images: split into 2, then 4 micro-batches (of 2, 2, 1, 1), the
    retry replays the same random draws, and the weights match training on whole batches."""
    config = TrainingSettings(epochs=2, batch_size=6, lr=0.01)
    torch.manual_seed(0)
    small = _Fits(limit=2)
    whole = ToyCNN(4, 0.5)
    whole.load_state_dict(small.state_dict())
    state = train(small, _data(12), config, seed=3, runtime=CPU, checkpointing=Checkpointing(tmp_path))
    assert state.parts == 4 and small.sizes[:6] == [6, 3, 2, 2, 1, 1]
    assert small.draws[0] == small.draws[1] == small.draws[2]  # each try starts from the same random state
    assert load_checkpoint(tmp_path / "last.pt")["parts"] == 4  # a resumed run splits the same way
    train(whole, _data(12), config, seed=3, runtime=CPU)
    for a, b in zip(small.parameters(), whole.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_out_of_memory_on_one_training_image_is_one_clear_error():
    with pytest.raises(SegbenchError, match="single training image runs out of GPU memory"):
        train(_Fits(limit=0), _data(4), TrainingSettings(epochs=1, batch_size=4), seed=0, runtime=CPU)


def test_out_of_memory_on_one_mask_is_one_clear_error():
    class Huge(ToyCNN):
        def predict(self, images, seeds):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    with pytest.raises(SegbenchError, match="out of GPU memory on a single mask"):
        predict_split(Huge(4, 0.5), _data(), _evaluation(1, 4), run_seed=1, runtime=CPU)


def test_a_step_budget_cuts_the_last_epoch_short():
    """7 steps at 4 batches per epoch: two epochs, the second of 3 steps, and the schedule and EMA
    cap count 7 steps; an epoch budget of the same length trains the same weights."""
    steps = []
    torch.manual_seed(0)
    by_steps = ToyCNN(4, 0.5)
    by_epochs = ToyCNN(4, 0.5)
    by_epochs.load_state_dict(by_steps.state_dict())
    budget = TrainingSettings(epochs=None, steps=7, batch_size=3)
    state = train(by_steps, _data(12), budget, seed=2, runtime=CPU, on_step=steps.append)
    assert state.epoch == 2 and len(state.losses) == 2 and [s.done for s in steps] == list(range(1, 8))
    assert {s.total for s in steps} == {7} and [s.step for s in steps] == [0, 1, 2, 3, 0, 1, 2]
    assert budget.total_steps(12) == 7 and budget.epochs_run(12) == 2
    train(by_epochs, _data(12), TrainingSettings(epochs=2, batch_size=3), seed=2, runtime=CPU)
    assert TrainingSettings(epochs=2, batch_size=3).total_steps(12) == 8
    same = TrainingSettings(epochs=None, steps=8, batch_size=3)
    torch.manual_seed(0)
    eight = ToyCNN(4, 0.5)
    train(eight, _data(12), same, seed=2, runtime=CPU)
    for a, b in zip(eight.parameters(), by_epochs.parameters()):
        assert torch.equal(a, b)  # 8 steps = 2 epochs of 4: the same training, bit for bit


@pytest.mark.parametrize(("samples", "batch", "batches"), [(480, 16, 30), (236, 16, 15), (17, 16, 1), (33, 16, 2),
                                                            (5, 1, 4), (1, 4, 1)])
def test_batches_per_epoch_counts_what_training_draws(samples, batch, batches):
    from segbench.engine.training import _batches

    assert TrainingSettings(batch_size=batch).batches_per_epoch(samples) == batches
    assert len(_batches(samples, batch, torch.Generator().manual_seed(0))) == batches
