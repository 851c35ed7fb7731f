"""Random image augmentation for the CIFAR recipe, written with torch's own operations (torchvision is not needed).

:class:`Augment` mirrors the Keras preprocessing layers of the course's Vision Transformer notebook (the Keras ViT
example), applied in their order:

- ``keras.layers.RandomFlip("horizontal")``: each image is mirrored left-right with probability 1/2;
- ``keras.layers.RandomRotation(factor=0.02)``: a rotation by an angle drawn uniformly from
  [-0.02 * 2 pi, +0.02 * 2 pi] radians (the factor is a fraction of a full turn); positive is counter-clockwise;
- ``keras.layers.RandomZoom(height_factor=0.2, width_factor=0.2)``: height and width are scaled independently by
  factors drawn uniformly from [1 - 0.2, 1 + 0.2]; as in Keras a factor above 1 zooms *out* (the output shows a
  larger region of the input) and below 1 zooms in.

Rotation and zoom are one affine resampling (``F.affine_grid`` + ``F.grid_sample``, bilinear, about the image's
centre, in pixel units so that non-square images are not sheared). Fill: pixels that come from outside the image
are *reflected* at the image's edge (``padding_mode="reflection"`` with ``align_corners=False``: ``d c b a | a b c
d | d c b a``), which is Keras' default ``fill_mode="reflect"`` for both layers; zeros would also be defensible on
normalised images (0 is the training mean), but reflection keeps the augmented images closest to the notebook's.
Keras resamples twice (rotation, then zoom); this resamples once with the composed map, so the two differ only
in interpolation and in how a corner reflected twice is filled.

The random parameters are drawn on the CPU from the module's own ``torch.Generator`` when a ``seed`` is given (the
same seed gives the same transforms on any device), otherwise from torch's global generator. The deterministic
core is :func:`flip_horizontal` and :func:`affine`; :meth:`Augment.draw` is the random part.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PADDING_MODES = ("reflection", "zeros", "border")


def flip_horizontal(images: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """``images`` (B, C, H, W) with those whose entry of the boolean ``flips`` (B,) is True mirrored left-right."""
    B, C, H, W = images.shape
    if flips.shape != (B,):
        raise ValueError(f"flips must have shape ({B},), got {tuple(flips.shape)}")
    mask = flips.to(device=images.device, dtype=torch.bool).view(B, 1, 1, 1)  # (B,) -> (B, 1, 1, 1)
    return torch.where(mask, images.flip(-1), images)


def affine_matrices(angles: torch.Tensor, zooms_h: torch.Tensor, zooms_w: torch.Tensor, height: int,
                    width: int) -> torch.Tensor:
    """The (B, 2, 3) float64 matrices that ``F.affine_grid`` takes for a rotation then a zoom about the centre.

    In pixel units about the centre, with x to the right and y down, an output pixel p samples the input at
    ``R(angle) @ diag(zoom_w, zoom_h) @ p`` (R = [[cos, -sin], [sin, cos]]: a positive angle turns the picture
    counter-clockwise). ``F.affine_grid`` works in coordinates normalised to [-1, 1] on each axis (with
    ``align_corners=False``: x = pixel * 2 / W), so the matrix is S^-1 R Z S with S = diag(W / 2, H / 2).
    """
    angles = torch.as_tensor(angles, dtype=torch.float64)
    zooms_h = torch.as_tensor(zooms_h, dtype=torch.float64)
    zooms_w = torch.as_tensor(zooms_w, dtype=torch.float64)
    if not (angles.ndim == 1 and angles.shape == zooms_h.shape == zooms_w.shape):
        raise ValueError(f"angles, zooms_h and zooms_w must be 1-D of one length, got {tuple(angles.shape)}, "
                         f"{tuple(zooms_h.shape)}, {tuple(zooms_w.shape)}")
    cos, sin = torch.cos(angles), torch.sin(angles)
    zero = torch.zeros_like(angles)
    rows = [
        torch.stack([cos * zooms_w, -sin * zooms_h * (height / width), zero], dim=-1),  # (B, 3)
        torch.stack([sin * zooms_w * (width / height), cos * zooms_h, zero], dim=-1),  # (B, 3)
    ]
    return torch.stack(rows, dim=1)  # 2 x (B, 3) -> (B, 2, 3)


def affine(images: torch.Tensor, angles: torch.Tensor, zooms_h: torch.Tensor, zooms_w: torch.Tensor, *,
           padding_mode: str = "reflection") -> torch.Tensor:
    """Rotate each image of (B, C, H, W) ``images`` by ``angles`` (B,) radians counter-clockwise, then zoom it
    by ``zooms_h`` and ``zooms_w`` (B,) about its centre (Keras' convention: 1 leaves it, 1.2 zooms out, 0.8 in).

    Bilinear resampling; ``padding_mode`` says what fills pixels taken from outside the image ("reflection":
    mirrored at the image's edge, Keras' ``fill_mode="reflect"``; "zeros"; "border": the nearest edge pixel).
    """
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {', '.join(PADDING_MODES)}, got {padding_mode!r}")
    B, C, H, W = images.shape
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point, got {images.dtype}")
    theta = affine_matrices(angles, zooms_h, zooms_w, H, W)  # (B, 2, 3) float64
    if theta.shape[0] != B:
        raise ValueError(f"{B} images but {theta.shape[0]} transforms")
    theta = theta.to(device=images.device, dtype=images.dtype)
    grid = F.affine_grid(theta, [B, C, H, W], align_corners=False)  # (B, H, W, 2): input (x, y) in [-1, 1]
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


class Augment(nn.Module):
    """Random flip, rotation and zoom of a float batch (B, C, H, W) in training mode; the identity in eval mode.

    ``flip``: mirror left-right with probability 1/2 (``RandomFlip("horizontal")``); ``rotation``: the largest
    angle as a fraction of a full turn (``RandomRotation(factor=rotation)``); ``zoom``: the largest relative change
    of height and of width, drawn independently (``RandomZoom(height_factor=zoom, width_factor=zoom)``); ``seed``:
    the module's own generator (None: torch's global one). One transform per image; see the module's docstring
    for the fill (reflection, as Keras).
    """

    def __init__(self, flip: bool = True, rotation: float = 0.02, zoom: float = 0.2, seed: int | None = None,
                 padding_mode: str = "reflection") -> None:
        super().__init__()
        if rotation < 0 or not 0 <= zoom < 1:
            raise ValueError(f"rotation must be >= 0 and zoom in [0, 1), got rotation={rotation}, zoom={zoom}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {', '.join(PADDING_MODES)}, got {padding_mode!r}")
        self.flip, self.rotation, self.zoom = bool(flip), float(rotation), float(zoom)
        self.seed, self.padding_mode = seed, padding_mode
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)

    def extra_repr(self) -> str:
        return f"flip={self.flip}, rotation={self.rotation}, zoom={self.zoom}, seed={self.seed}"

    def draw(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The next ``batch`` transforms, on the CPU: flips (bool), angles (radians), zooms_h, zooms_w, each (B,).

        All four are drawn whatever the settings (a disabled one is then set to its neutral value), so turning
        one off does not change the draws of the others.
        """
        u = torch.rand(4, batch, generator=self.generator, dtype=torch.float64)  # (4, B) uniform in [0, 1)
        flips = (u[0] < 0.5) & self.flip
        angles = (2 * u[1] - 1) * (self.rotation * 2 * math.pi)
        zooms_h = 1 + (2 * u[2] - 1) * self.zoom
        zooms_w = 1 + (2 * u[3] - 1) * self.zoom
        return flips, angles, zooms_h, zooms_w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        B, C, H, W = x.shape
        flips, angles, zooms_h, zooms_w = self.draw(B)
        if self.flip:
            x = flip_horizontal(x, flips)
        if self.rotation > 0 or self.zoom > 0:
            x = affine(x, angles, zooms_h, zooms_w, padding_mode=self.padding_mode)
        return x
