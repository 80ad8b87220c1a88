"""Contract checks for plugin authors: run them in your plugin's tests.

segbench's own registry-driven tests call these for every registered model,
dataset and metric, so a third-party plugin is held to the same contract.
"""

from __future__ import annotations

import numpy as np
import torch

from segbench.specs import DatasetOptions, DatasetSpec, MetricSpec, ModelSpec, Prediction, Stage


def _probabilities(output: torch.Tensor | Prediction) -> torch.Tensor:
    return output.probabilities if isinstance(output, Prediction) else output


def check_model(spec: ModelSpec, name: str | None = None, preset: str = "tiny", image_size: int = 32) -> None:
    """Build `spec` at `preset` as a run plans it, take one step of each training stage (its loss on its
    view's tensors, reaching the parameters it trains; a fit stage's fit once), and check `predict`'s
    shape, range and determinism (`name`: for a prefix spec, the full name, e.g. "smp:FPN:resnet34")."""
    from segbench.plan.build import plan_model

    plan = plan_model(spec, name or spec.name, preset, "lung", image_size)
    torch.manual_seed(0)
    model = spec.factory(plan.factory_input(image_size))
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(3, 1, image_size, image_size, generator=gen)
    masks = (torch.rand(3, 1, image_size, image_size, generator=gen) > 0.5).float()
    seeds = torch.tensor([11, 22, 33], dtype=torch.int64)
    for stage in spec.stages:
        _check_stage(model, stage, images, masks, seeds)

    model.eval()
    with torch.inference_mode():
        first = _probabilities(model.predict(images, seeds))
        again = _probabilities(model.predict(images, seeds))
        alone = _probabilities(model.predict(images[1:2], seeds[1:2]))
    assert first.shape == images.shape, f"predict must return {tuple(images.shape)}, got {tuple(first.shape)}"
    assert first.dtype == torch.float32, f"predict must return float32, got {first.dtype}"
    assert float(first.min()) >= 0 and float(first.max()) <= 1, "probabilities must lie in [0, 1]"
    assert torch.equal(first, again), "predict must be deterministic for fixed seeds"
    assert torch.allclose(first[1:2], alone, atol=1e-5), "a sample's prediction must not depend on its batch"


def fit_stages(model: torch.nn.Module, spec: ModelSpec, image_size: int = 32) -> torch.nn.Module:
    """`model` with its fit stages (a calibration, say) run once on random images, as a run leaves it before
    predicting: what a test of `predict` on an untrained model needs. Returns the model, in eval mode."""
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(4, 1, image_size, image_size, generator=gen)
    model.eval()
    for stage in spec.stages:
        if stage.fit:
            _fit(model, stage, images, torch.arange(4, dtype=torch.int64))
    return model


def _fit(model: torch.nn.Module, stage: Stage, images: torch.Tensor, seeds: torch.Tensor) -> None:
    """A fit stage as the engine runs it on one batch: `fit` on the outputs of `fit_on`."""
    with torch.no_grad():
        getattr(model, stage.fit)(getattr(model, stage.fit_on)(images, seeds).float())


def _check_stage(model: torch.nn.Module, stage: Stage, images: torch.Tensor, masks: torch.Tensor,
                 seeds: torch.Tensor) -> None:
    """One step of `stage` as the engine takes it: the loss on (images, masks) for the labelled view, on
    images alone for the others, reaching the parameters the stage trains; a fit stage's fit."""
    for method in (stage.fit, stage.fit_on) if stage.fit else (stage.loss,):
        assert callable(getattr(model, method, None)), f"stage {stage.name!r} names method {method!r}, which the model lacks"
    if stage.fit:
        model.eval()
        _fit(model, stage, images, seeds)
        return
    trained = model.get_submodule(stage.trains) if stage.trains else model
    model.train()
    model.zero_grad(set_to_none=True)
    loss = getattr(model, stage.loss)(images, masks) if stage.needs_labels else getattr(model, stage.loss)(images)
    assert loss.ndim == 0 and torch.isfinite(loss), f"stage {stage.name!r}: {stage.loss} must be a finite scalar, got {loss}"
    loss.backward()
    grads = [p.grad for p in trained.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), \
        f"stage {stage.name!r}: {stage.loss} must reach the parameters it trains"


def check_dataset(spec: DatasetSpec, options: DatasetOptions, splits: tuple[str, ...] = ("train", "val", "test")) -> None:
    """Every split yields stable, unique ids and (image, mask) arrays of the documented types."""
    source = spec.factory(options)
    for split in splits:
        ids = list(source.sample_ids(split))
        assert ids, f"split {split} is empty"
        assert len(set(ids)) == len(ids), f"split {split} has duplicate ids"
        assert all(isinstance(i, str) and i for i in ids), "sample ids must be non-empty strings"
        assert source.fingerprint(split) == spec.factory(options).fingerprint(split), "fingerprint must be stable"
        image, mask = source.load(split, ids[0])
        image, mask = np.asarray(image), np.asarray(mask)
        assert image.shape[:2] == mask.shape, f"image {image.shape} and mask {mask.shape} differ in size"
        assert image.ndim in (2, 3), f"image must be (H, W) or (H, W, C), got {image.shape}"
        if image.dtype != np.uint8:
            assert np.issubdtype(image.dtype, np.floating), f"image dtype must be uint8 or float, got {image.dtype}"
            assert image.min() >= 0 and image.max() <= 1, "float images must lie in [0, 1]"
        assert set(np.unique(mask).tolist()) <= {0, 1} or set(np.unique(mask).tolist()) <= {0, 255}, \
            "masks must hold {0, 1} or {0, 255}"
        if hasattr(source, "metadata"):
            _check_metadata(source, split, ids)


def _check_metadata(source, split: str, ids: list[str]) -> None:
    """The optional metadata: text values under valid keys, the same keys for every sample of the split."""
    from segbench.data.prepare import METADATA_KEY

    first, last = dict(source.metadata(split, ids[0])), dict(source.metadata(split, ids[-1]))
    assert first.keys() == last.keys(), f"metadata keys must be the same for every sample of {split}"
    for key, value in first.items():
        assert METADATA_KEY.fullmatch(key), f"metadata key {key!r} must be lower-case letters, digits and _"
        assert isinstance(value, str), f"metadata value of {key!r} must be a str, got {type(value).__name__}"


def check_metric(spec: MetricSpec) -> None:
    """A count metric maps float64 count tensors to one finite value per element; a mask metric gives one
    finite float per image, the same twice, on ordinary, empty, one-pixel and border-touching masks."""
    if spec.kind == "masks":
        _check_mask_metric(spec)
        return
    gen = torch.Generator().manual_seed(0)
    tp, fp, fn, tn = (torch.randint(0, 50, (16,), generator=gen).double() for _ in range(4))
    values = spec.fn(tp, fp, fn, tn)
    assert values.shape == tp.shape, f"{spec.name} must return one value per image"
    assert torch.isfinite(values).all(), f"{spec.name} must be finite on ordinary counts"
    zero = torch.zeros(1, dtype=torch.float64)
    empty = spec.fn(zero, zero, zero, torch.full((1,), 100.0, dtype=torch.float64))
    assert torch.isfinite(empty).all(), f"{spec.name} must follow the empty-mask policy, not return NaN"


def _check_mask_metric(spec: MetricSpec) -> None:
    from segbench.metrics.masks import MaskPair

    rng = np.random.default_rng(0)
    empty, pixel, border = np.zeros((16, 16), bool), np.zeros((16, 16), bool), np.zeros((16, 16), bool)
    pixel[7, 9] = True
    border[:, :3] = True
    pairs = [(rng.random((16, 16)) < 0.3, rng.random((16, 16)) < 0.3), (empty, empty), (empty, border),
             (border, empty), (pixel, border), (pixel, pixel)]
    for prediction, reference in pairs:
        probabilities = np.where(prediction, 0.8, 0.2).astype(np.float32)
        value = spec.fn(MaskPair(prediction, reference, probabilities))
        again = spec.fn(MaskPair(prediction.copy(), reference.copy(), probabilities.copy()))
        assert isinstance(value, (float, np.floating)) and np.isfinite(value), \
            f"{spec.name} must return a finite float per image, also for empty masks (its empty_rule), got {value!r}"
        assert value == again, f"{spec.name} must be deterministic"
    assert spec.empty_rule, f"mask metric {spec.name} must state its empty_rule (printed in every report)"
