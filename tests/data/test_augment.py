"""Batch transforms: shapes, normalisation, centre crop, random resized crop, flip, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tdrag.data.augment import (
    NORM_MEAN,
    NORM_STD,
    center_crop_box,
    crop_resize,
    denormalize,
    eval_transform,
    normalize,
    sample_crop_params,
    train_transform,
)


def random_clips(b=3, t=4, s=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, s, s, 3), generator=g, dtype=torch.uint8)


def expected_normalised(clips_u8: np.ndarray) -> np.ndarray:
    """(B, T, H, W, 3) uint8 -> (B, 3, T, H, W) float, computed independently in numpy."""
    x = clips_u8.astype(np.float64) / 255.0
    x = (x - np.array(NORM_MEAN)) / np.array(NORM_STD)
    return x.transpose(0, 4, 1, 2, 3)


def test_eval_transform_is_the_normalised_centre_crop():
    clips = random_clips(s=20)
    out = eval_transform(clips, crop=12)
    assert out.shape == (3, 3, 4, 12, 12) and out.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last_3d)  # memory order (B, T, H, W, C)
    top, left = center_crop_box(20, 12)
    assert (top, left) == (4, 4)
    ref = expected_normalised(clips.numpy()[:, :, top : top + 12, left : left + 12])
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)
    assert torch.equal(out, eval_transform(clips, crop=12))
    assert center_crop_box(21, 12) == (4, 4)
    with pytest.raises(ValueError, match="crop 24 must be in 1..20"):
        eval_transform(clips, crop=24)
    with pytest.raises(ValueError, match="channels-last"):
        eval_transform(clips.permute(0, 1, 4, 2, 3), crop=12)


def test_normalise_and_denormalise_round_trip():
    clips = torch.full((1, 2, 8, 8, 3), 0, dtype=torch.uint8)
    clips[..., 0], clips[..., 1], clips[..., 2] = 10, 128, 250
    out = eval_transform(clips, crop=8)
    for c, v in enumerate((10, 128, 250)):
        assert torch.allclose(out[:, c], torch.tensor((v / 255 - NORM_MEAN[c]) / NORM_STD[c]), atol=1e-5)
    back = denormalize(out)
    assert torch.allclose(back * 255, clips.permute(0, 4, 1, 2, 3).float(), atol=1e-3)
    assert torch.allclose(normalize(back), out, atol=1e-5)
    # A single (3, H, W) image uses channel dim 0; (B, 3, H, W) needs channel_dim=1.
    assert torch.allclose(denormalize(out[0, :, 0]), back[0, :, 0])
    assert torch.allclose(denormalize(out[:, :, 0], channel_dim=1), back[:, :, 0])


def test_full_box_without_flip_is_identity():
    clips = random_clips(s=16)
    out = train_transform(clips, crop=16, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False)
    np.testing.assert_allclose(out.numpy(), eval_transform(clips, crop=16).numpy(), atol=1e-4)


def test_flip_mirrors_width():
    clips = random_clips(b=2, s=16)
    full = torch.tensor([[0, 0, 16, 16]] * 2)
    flipped = crop_resize(clips, full, torch.tensor([True, False]), crop=16)
    plain = clips.permute(0, 1, 4, 2, 3)
    assert flipped.shape == (2, 4, 3, 16, 16)
    assert torch.equal(flipped[0], plain[0].flip(-1)) and torch.equal(flipped[1], plain[1])


def test_crop_takes_each_clips_own_box_for_all_its_frames():
    clips = random_clips(b=2, t=3, s=20)
    boxes = torch.tensor([[4, 8, 8, 8], [0, 2, 16, 16]])
    out = crop_resize(clips, boxes, torch.tensor([False, False]), crop=8)
    assert out.shape == (2, 3, 3, 8, 8)
    assert torch.equal(out[0], clips[0, :, 4:12, 8:16].permute(0, 3, 1, 2))
    # A 16x16 box resampled to 8x8 averages 2x2 blocks (bilinear at their centres), up to
    # rounding to uint8.
    second = clips[1, :, 0:16, 2:18].permute(0, 3, 1, 2).float()
    pooled = torch.nn.functional.avg_pool2d(second, 2)
    np.testing.assert_allclose(out[1].float().numpy(), pooled.numpy(), atol=1.0)
    with pytest.raises(ValueError, match="not inside a 20x20 frame"):
        crop_resize(clips, torch.tensor([[4, 8, 8, 13], [0, 0, 4, 4]]), torch.tensor([False, False]), crop=8)


def test_random_boxes_respect_scale_and_frame():
    g = torch.Generator().manual_seed(0)
    boxes, flips = sample_crop_params(4000, 128, scale=(0.3, 0.9), generator=g)
    top, left, h, w = boxes.unbind(1)
    assert torch.all(top >= 0) and torch.all(left >= 0)
    assert boxes.dtype == torch.int64
    assert torch.all(top + h <= 128) and torch.all(left + w <= 128)
    area = h * w / 128**2
    slack = 2 / 128  # sides are rounded to whole pixels
    assert area.min() >= 0.3 - slack and area.max() <= 0.9 + slack
    assert area.min() < 0.32 and area.max() > 0.85  # the range is used, not a fixed area
    assert 0.45 < flips.float().mean() < 0.55
    assert len(torch.unique(boxes, dim=0)) > 3000  # per-sample boxes, not one box for the batch
    _, no_flips = sample_crop_params(100, 128, flip=False, generator=g)
    assert not no_flips.any()


def test_train_transform_shapes_and_reproducibility():
    clips = random_clips(b=4, t=4, s=24)
    a = train_transform(clips, crop=16, generator=torch.Generator().manual_seed(3))
    b = train_transform(clips, crop=16, generator=torch.Generator().manual_seed(3))
    c = train_transform(clips, crop=16, generator=torch.Generator().manual_seed(4))
    assert a.shape == (4, 3, 4, 16, 16) and a.dtype == torch.float32
    assert a.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(a).all()
    # Values stay within the normalised range of 0..255 inputs (bilinear never overshoots).
    lo = (0 - np.array(NORM_MEAN)) / np.array(NORM_STD)
    hi = (1 - np.array(NORM_MEAN)) / np.array(NORM_STD)
    for ch in range(3):
        assert a[:, ch].min() >= lo[ch] - 1e-4 and a[:, ch].max() <= hi[ch] + 1e-4


@pytest.mark.gpu
def test_transforms_run_on_cuda_and_match_cpu():
    clips = random_clips(b=4, t=4, s=24)
    g = torch.Generator().manual_seed(0)
    boxes, flips = sample_crop_params(4, 24, generator=g)
    cpu = crop_resize(clips, boxes, flips, crop=16)
    gpu = crop_resize(clips.cuda(), boxes, flips, crop=16)
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(gpu.float().cpu().numpy(), cpu.float().numpy(), atol=1.0)
    out = train_transform(clips.cuda(), crop=16, generator=torch.Generator(device="cuda").manual_seed(0))
    assert out.device.type == "cuda" and out.shape == (4, 3, 4, 16, 16)
    assert out.is_contiguous(memory_format=torch.channels_last_3d)
    # Same boxes (a CPU generator), resized in float on the GPU and in uint8 on the CPU: at most
    # one grey level apart after normalisation.
    gpu_x = train_transform(clips.cuda(), crop=16, generator=torch.Generator().manual_seed(5))
    cpu_x = train_transform(clips, crop=16, generator=torch.Generator().manual_seed(5))
    step = 1.0 / (255.0 * min(NORM_STD))
    np.testing.assert_allclose(gpu_x.cpu().numpy(), cpu_x.numpy(), atol=step + 1e-4)
    np.testing.assert_allclose(eval_transform(clips.cuda(), 16).cpu().numpy(), eval_transform(clips, 16).numpy(), atol=1e-5)


def test_train_transform_is_normalised_crop_resize_in_channels_last_3d():
    # The fused path (resize into the output, normalise clip by clip) gives exactly the values of
    # the plain definition: crop_resize, then normalisation computed independently in numpy.
    clips = random_clips(b=5, t=3, s=24, seed=1)
    boxes, flips = sample_crop_params(5, 24, generator=torch.Generator().manual_seed(7))
    assert flips.any() and not flips.all()
    out = train_transform(clips, crop=16, generator=torch.Generator().manual_seed(7))
    assert out.shape == (5, 3, 3, 16, 16)
    assert out.is_contiguous(memory_format=torch.channels_last_3d)
    resized = crop_resize(clips, boxes, flips, crop=16).permute(0, 1, 3, 4, 2)  # (B, T, c, c, 3)
    np.testing.assert_allclose(out.numpy(), expected_normalised(resized.numpy()), atol=1e-5)
    # Downstream code may ask for the plain layout; the values do not change.
    assert torch.equal(out.contiguous(), out) and out.contiguous().is_contiguous()


def test_channels_last_3d_output_feeds_conv3d_on_cpu():
    x = eval_transform(random_clips(b=2, t=4, s=12), crop=10)
    weight = torch.randn(5, 3, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        torch.nn.functional.conv3d(x, weight), torch.nn.functional.conv3d(x.contiguous(), weight), atol=1e-4, rtol=1e-4
    )


def test_cpu_outputs_in_use_are_never_overwritten():
    a, b = random_clips(seed=2), random_clips(seed=3)
    first = eval_transform(a, crop=12)
    kept = first.clone()
    view = train_transform(a, crop=12, generator=torch.Generator().manual_seed(0))[1:]  # only a view survives
    view_kept = view.clone()
    for seed in range(6):  # more calls than the pool keeps buffers per shape
        eval_transform(random_clips(seed=10 + seed), crop=12)
        train_transform(b, crop=12, generator=torch.Generator().manual_seed(seed))
    second = eval_transform(b, crop=12)
    assert torch.equal(first, kept) and torch.equal(view, view_kept)
    assert second.data_ptr() != first.data_ptr()
    np.testing.assert_allclose(second.numpy(), expected_normalised(b.numpy()[:, :, 4:16, 4:16]), atol=1e-5)
    # A dropped output's memory is reused (no fresh allocation, hence no page faults, per batch).
    ptr = second.data_ptr()
    del second
    assert eval_transform(a, crop=12).data_ptr() == ptr
