"""Speed options keep the masks: channels_last and torch.compile equal the default path on the CPU;
bf16 autocast (`--precision bf16`) stays within a stated tolerance on the CPU and, where present, CUDA."""

import pytest
import torch

from segbench.engine.compiling import compile_children
from segbench.engine.device import autocast
from tests.diffusion.test_segmenter import images, tiny

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

SEEDS = torch.tensor([11, 12, 13, 14])


def test_channels_last_gives_the_same_masks():
    nchw = tiny(channels_last=False)
    assert nchw.unet.input_conv.weight.is_contiguous()
    nhwc = tiny(channels_last=True)
    nhwc.load_state_dict(nchw.state_dict())  # the same weights (tiny()'s randn_like follows the layout)
    assert nhwc.unet.input_conv.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(nhwc.sample(images(4), SEEDS), nchw.sample(images(4), SEEDS), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_compiled_model_gives_the_same_masks():
    """What `segbench run --compile` does: compile every child module in place."""
    model = tiny()
    default = model.sample(images(4), SEEDS)
    compile_children(model)
    torch.testing.assert_close(model.sample(images(4), SEEDS), default, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_autocast_stays_within_tolerance(device):
    """Stated tolerance: probabilities within 0.01 of float32 (the GPU check measured 0.0015 on the paper net)."""
    model = tiny().to(device)
    x, seeds = images(4).to(device), SEEDS.to(device)
    with autocast(torch.device(device), "fp32"):
        fp32 = model.predict(x, seeds).probabilities
    with autocast(torch.device(device), "bf16"):
        bf16 = model.predict(x, seeds).probabilities
    assert bf16.dtype == torch.float32
    assert 0 < (fp32 - bf16).abs().max().item() < 0.01  # > 0: bf16 did run


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    """The paper preset's memory option: activations recomputed in the backward pass, same numbers."""
    results = []
    for checkpointing in (False, True):
        model = tiny(gradient_checkpointing=checkpointing).train()
        assert model.unet.checkpointing is checkpointing
        torch.manual_seed(5)
        loss = model.training_loss(images(4), (images(4, seed=1) > 0.5).float())
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b, rtol=0, atol=0)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
