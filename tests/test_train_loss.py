"""The context-aware loss against values computed by hand (method.md, "Context-aware loss")."""

import math

import pytest

torch = pytest.importorskip("torch")

from models.train.loss import (ContextLoss, context_weights, masked_weighted_mae, spatial_weights,  # noqa: E402
                               spectral_angle, ssim, ssim_loss, weighted_sam)


def test_centre_share_is_7446_with_centre_weight_1():
    w = context_weights(15, 11, centre_weight=1.0)
    assert w.shape == (11, 15, 15)
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-12)
    # hand: spatial sum 1 + 8*0.01 + 16*0.001 + 24*1e-4 + ... ; temporal 1 + 2*(0.1+...+1e-5)
    s = 1 + sum(8 * d * 0.01 * 0.1 ** (d - 1) for d in range(1, 8))
    t = 1 + 2 * sum(0.1 ** k for k in range(1, 6))
    assert float(w[5, 7, 7]) == pytest.approx(1 / (s * t), rel=1e-12)
    assert float(w[5, 7, 7]) == pytest.approx(0.7446, abs=5e-5)


def test_ring_and_frame_factors_and_centre_weight():
    ws = spatial_weights(15)
    assert float(ws[7, 7]) == 1.0 and float(ws[6, 8]) == pytest.approx(0.01) and float(ws[0, 14]) == pytest.approx(1e-8)
    w = context_weights(15, 11, centre_weight=1.75)
    # ratios are untouched by normalisation
    assert float(w[5, 7, 6] / w[5, 7, 5]) == pytest.approx(10.0)
    assert float(w[4, 7, 7] / w[5, 7, 6]) == pytest.approx(0.1 / 0.01)
    assert float(w[5, 7, 7] / w[4, 7, 7]) == pytest.approx(17.5)
    # off-centre target (first date of a series): the temporal factor is centred on it
    w0 = context_weights(15, 11, centre_weight=1.0, target_index=0)
    assert int(w0.flatten().argmax()) == 7 * 15 + 7
    assert float(w0[1, 7, 7] / w0[0, 7, 7]) == pytest.approx(0.1)
    only = context_weights(15, 11, target_index=3, context=False)
    assert float(only[3, 7, 7]) == 1.0 and float(only.sum()) == 1.0


def test_masked_weighted_mae_by_hand():
    pred = torch.zeros(1, 1, 2, 3, 3)
    true = torch.zeros(1, 1, 2, 3, 3)
    true[0, 0, :, 1, 1] = torch.tensor([0.2, 0.4])      # centre error 0.3 (mean over bands)
    true[0, 0, :, 0, 0] = torch.tensor([1.0, 1.0])      # corner error 1.0
    w = torch.zeros(1, 1, 3, 3)
    w[0, 0, 1, 1], w[0, 0, 0, 0] = 3.0, 1.0
    mask = torch.ones(1, 1, 3, 3)
    assert float(masked_weighted_mae(pred, true, mask, w)) == pytest.approx((3 * 0.3 + 1 * 1.0) / 4)
    mask[0, 0, 0, 0] = 0                                  # invalid corner: out of loss and normaliser
    assert float(masked_weighted_mae(pred, true, mask, w)) == pytest.approx(0.3)


def test_spectral_angle_by_hand():
    a = torch.tensor([1.0, 0.0, 0.0]).view(1, 1, 3, 1, 1)
    b = torch.tensor([0.0, 2.0, 0.0]).view(1, 1, 3, 1, 1)
    c = torch.tensor([1.0, 1.0, 0.0]).view(1, 1, 3, 1, 1)
    assert float(spectral_angle(a, b)) == pytest.approx(math.pi / 2, abs=1e-3)
    assert float(spectral_angle(a, c)) == pytest.approx(math.pi / 4, abs=1e-4)
    assert float(spectral_angle(c, 3 * c)) == pytest.approx(0.0, abs=1e-3)  # scale-invariant
    w = torch.ones(1, 1, 1, 1)
    m = torch.ones(1, 1, 1, 1)
    assert float(weighted_sam(a, c, m, w)) == pytest.approx(math.pi / 4, abs=1e-4)


def test_ssim_by_hand():
    x = torch.rand(2, 3, 15, 15)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    # constant images a, b: SSIM = (2ab + C1) / (a^2 + b^2 + C1) (structure term is C2/C2)
    a, b = 0.3, 0.5
    c1 = 0.01 ** 2
    f64 = dict(dtype=torch.float64)
    s = ssim(torch.full((1, 1, 15, 15), a, **f64), torch.full((1, 1, 15, 15), b, **f64))
    assert float(s) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-9)
    pred, true = torch.full((1, 2, 1, 15, 15), a), torch.full((1, 2, 1, 15, 15), b)
    mask = torch.ones(1, 2, 15, 15)
    exists = torch.tensor([[1.0, 0.0]])
    expected = 1 - (2 * a * b + c1) / (a * a + b * b + c1)
    assert float(ssim_loss(pred, true, mask, exists)) == pytest.approx(expected, rel=2e-3)  # float32
    # invalid pixels take the truth: an all-invalid frame is a perfect match
    assert float(ssim_loss(pred, true, torch.zeros(1, 2, 15, 15), exists)) == pytest.approx(0.0, abs=1e-6)


def test_context_loss_mix():
    torch.manual_seed(0)
    pred, true = torch.rand(3, 11, 10, 15, 15), torch.rand(3, 11, 10, 15, 15)
    mask, exists = torch.ones(3, 11, 15, 15), torch.ones(3, 11)
    target = torch.tensor([5, 0, 10])
    loss = ContextLoss(mae=0.665, sam=0.315, ssim=0.02, centre_weight=1.75)
    total, terms = loss(pred, true, mask, exists, target)
    assert float(total) == pytest.approx(0.665 * terms["mae"] + 0.315 * terms["sam"] + 0.02 * terms["ssim"], rel=1e-5)
    centre_only = ContextLoss(mae=1.0, context=False)
    _, t = centre_only(pred, true, mask, exists, target)
    hand = sum(float((pred[i, k, :, 7, 7] - true[i, k, :, 7, 7]).abs().mean()) for i, k in enumerate([5, 0, 10])) / 3
    assert t["mae"] == pytest.approx(hand, rel=1e-5)
