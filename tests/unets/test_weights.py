"""weights_path: whole-model, encoder-only and checkpoint files, and their errors."""

from __future__ import annotations

import re

import pytest
import torch

from segbench import SegbenchError

IMAGES = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(3))
SEEDS = torch.zeros(2, dtype=torch.int64)


def _trained_like(model):
    """Perturb every weight so a loaded copy cannot match by chance."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return model.eval()


@pytest.mark.parametrize("name", ["unet", "res50attunet"])
def test_whole_model_round_trip(build, tmp_path, name):
    source = _trained_like(build(name))
    path = tmp_path / "net.pt"
    torch.save(source.net.state_dict(), path)
    loaded = build(name, weights_path=str(path)).eval()
    torch.testing.assert_close(loaded.predict(IMAGES, SEEDS), source.predict(IMAGES, SEEDS))


def test_segmenter_state_and_segbench_checkpoint_load(build, tmp_path):
    source = _trained_like(build("unet"))
    torch.save(source.state_dict(), tmp_path / "segmenter.pt")
    torch.save({"epoch": 3, "model": source.state_dict(), "losses": [0.5]}, tmp_path / "last.pt")
    for file in ("segmenter.pt", "last.pt"):
        loaded = build("unet", weights_path=str(tmp_path / file)).eval()
        torch.testing.assert_close(loaded.predict(IMAGES, SEEDS), source.predict(IMAGES, SEEDS))


def test_encoder_only(build, tmp_path):
    source = _trained_like(build("unet"))
    torch.save(source.net.encoder.state_dict(), tmp_path / "encoder.pt")
    loaded = build("unet", weights_path=str(tmp_path / "encoder.pt"))
    for key, value in source.net.encoder.state_dict().items():
        torch.testing.assert_close(loaded.net.encoder.state_dict()[key], value)
    fresh = build("unet")
    assert torch.equal(loaded.net.decoder.blocks[0].conv1[0].weight, fresh.net.decoder.blocks[0].conv1[0].weight)


def test_missing_file_names_the_path(build, tmp_path):
    path = tmp_path / "nowhere" / "unet.pt"
    with pytest.raises(SegbenchError, match=re.escape(f"weights_path '{path}' does not exist")):
        build("unet", weights_path=str(path))


def test_keys_that_fit_nothing(build, tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(SegbenchError, match="match neither the model nor its encoder"):
        build("unet", weights_path=str(tmp_path / "other.pt"))


def test_wrong_shapes(build, tmp_path):
    torch.save(build("unet", preset="small").net.state_dict(), tmp_path / "small.pt")
    with pytest.raises(SegbenchError, match="does not fit the model"):  # the same keys, a narrower decoder
        build("unet", preset="small", decoder_channels=[32, 16, 16, 8, 8], weights_path=str(tmp_path / "small.pt"))


def test_not_a_state_dict(build, tmp_path):
    (tmp_path / "junk.pt").write_text("not a torch file")
    with pytest.raises(SegbenchError, match="not a loadable state dict"):
        build("unet", weights_path=str(tmp_path / "junk.pt"))
