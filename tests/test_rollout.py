"""Does attention rollout (Abnar and Zuidema, ACL 2020) chain the layers as the paper does, and do the grid
plots draw?"""

from __future__ import annotations

import pytest
import torch

from autograder.plots import grid_overlay
from autograder.exercises.vit.rollout import attention_rollout, patch_importance


def random_maps(seed: int, layers: int, B: int = 2, heads: int = 3, N: int = 6) -> list[torch.Tensor]:
    """``layers`` random attention weights (B, heads, N, N), rows summing to 1, in float64."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.softmax(torch.randn(B, heads, N, N, generator=gen, dtype=torch.float64), -1) for _ in range(layers)]


@pytest.mark.parametrize("residual", [True, False])
def test_is_the_rollout_of_identity_attention_the_identity(residual):
    B, heads, N = 2, 4, 5
    eye = torch.eye(N, dtype=torch.float64).expand(B, heads, N, N)
    rollout = attention_rollout([eye, eye, eye], residual=residual)
    assert torch.equal(rollout, torch.eye(N, dtype=torch.float64).expand(B, N, N))


def test_is_one_layer_without_the_residual_the_mean_over_heads():
    (maps,) = random_maps(0, 1)
    torch.testing.assert_close(attention_rollout([maps], residual=False), maps.mean(1))


def test_does_one_layer_with_the_residual_add_half_the_identity():
    (maps,) = random_maps(1, 1)
    N = maps.shape[-1]
    torch.testing.assert_close(attention_rollout([maps]), 0.5 * maps.mean(1) + 0.5 * torch.eye(N, dtype=maps.dtype))


@pytest.mark.parametrize("residual", [True, False])
def test_are_the_layers_chained_last_on_the_left(residual):
    maps = random_maps(2, 3)
    N = maps[0].shape[-1]
    eye = torch.eye(N, dtype=torch.float64)
    a = [(0.5 * m.mean(1) + 0.5 * eye) if residual else m.mean(1) for m in maps]
    torch.testing.assert_close(attention_rollout(maps, residual=residual), a[2] @ a[1] @ a[0])


@pytest.mark.parametrize("residual", [True, False])
def test_do_the_rows_sum_to_one_and_is_the_shape_b_n_n(residual):
    maps = random_maps(3, 4, B=3, heads=2, N=7)
    rollout = attention_rollout(maps, residual=residual)
    assert rollout.shape == (3, 7, 7)
    assert rollout.dtype == torch.float64
    assert (rollout >= 0).all()
    torch.testing.assert_close(rollout.sum(-1), torch.ones(3, 7, dtype=torch.float64))


def test_is_a_mismatched_or_empty_stack_refused():
    with pytest.raises(ValueError):
        attention_rollout([])
    with pytest.raises(ValueError):
        attention_rollout(random_maps(4, 1, N=5) + random_maps(5, 1, N=6))
    with pytest.raises(ValueError):
        attention_rollout([torch.ones(2, 5, 5) / 5])


def test_is_the_patch_importance_the_column_mean_on_the_grid():
    # 2 output tokens x 4 input tokens on a (2, 2) grid: rows of a rollout, each summing to 1
    rollout = torch.tensor([[[1.0, 0.0, 0.0, 0.0],
                             [0.5, 0.5, 0.0, 0.0],
                             [0.0, 0.0, 0.0, 1.0],
                             [0.5, 0.0, 0.0, 0.5]]])  # (1, 4, 4)
    importance = patch_importance(rollout, (2, 2))
    expected = torch.tensor([[[2.0 / 4, 0.5 / 4],  # token 0 (row 0, column 0), token 1 (row 0, column 1)
                              [0.0 / 4, 1.5 / 4]]])  # token 2, token 3
    torch.testing.assert_close(importance, expected)
    assert float(importance.sum()) == pytest.approx(1.0)


def test_does_patch_importance_refuse_a_grid_of_the_wrong_size():
    with pytest.raises(ValueError):
        patch_importance(torch.eye(6).expand(1, 6, 6), (2, 2))


def test_does_the_grid_overlay_write_a_png(tmp_path):
    torch.manual_seed(0)
    images = torch.randn(3, 1, 8, 8).numpy()
    grids = torch.rand(3, 2, 2).numpy()
    path = tmp_path / "importance.png"
    fig = grid_overlay(images, grids, titles=["a", "b", "c"], cell=4, columns=2, path=str(path))
    assert fig is not None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_does_the_grid_overlay_draw_an_uneven_token_grid_over_colour_images(tmp_path):
    images = torch.randn(2, 3, 9, 7).numpy()  # ceil(9 / 4) x ceil(7 / 4) = 3 x 2 tokens after two stages
    grids = torch.softmax(torch.randn(2, 6), -1).reshape(2, 3, 2).numpy()
    path = tmp_path / "weights.png"
    grid_overlay(images, grids, cell=4, title="pooling weight", path=str(path))
    assert path.stat().st_size > 0
    with pytest.raises(ValueError):
        grid_overlay(images, grids[:1])
