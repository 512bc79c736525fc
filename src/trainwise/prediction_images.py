"""Images for trainwise.predict, converted as the run's folder loader converted its own
(data/images.py): a folder or image files decoded by the same decoder (alpha dropped,
palettes and 16 bits to 8-bit), gray saved as RGB read as one channel, gray repeated to RGB
for a colour run, and every image resized (antialiased bilinear) to the run's input size.
Arrays given to a folder run get the same channel and size conversions; to a run of a .npz,
only the resize its data.image_size made (its loader converted nothing else). Each conversion is
said once (a warning, which `trainwise predict` prints on stderr), never done silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainwise.caller_line import warn_at_caller
from trainwise.data.errors import DataError
from trainwise.data.folders import SUFFIXES, is_hidden
from trainwise.data.images import _decode_all, _is_gray, resize, resize_images

# ITU-R 601 luma, Pillow's own convert("L") weights: a colour image for a run that only
# ever saw gray images is read as Pillow would have stored it gray
LUMA = (0.299, 0.587, 0.114)


# what an image run's predict reads; said wherever a path given to it is not one of them
IMAGE_INPUTS = (f"Give a folder of images, an image file ({', '.join(sorted(SUFFIXES))}) or "
                "a list of them, or a .npz whose X holds the pixels.")


@dataclass(frozen=True)
class ImageFiles:
    """Decoded images in the run's layout, and the file each row came from."""

    pixels: np.ndarray  # (N, C, H, W) uint8
    files: list[str]


def is_image_input(x: object) -> bool:
    """A folder, an image file, or a list of image files (paths as str or Path)."""
    if isinstance(x, list | tuple):
        return bool(x) and all(isinstance(p, str | Path) for p in x)
    if not isinstance(x, str | Path):
        return False
    return Path(x).is_dir() or Path(x).suffix.lower() in SUFFIXES


def image_paths(x: str | Path | list | tuple) -> list[Path]:
    """The image files of a folder (every depth, sorted, hidden entries skipped), or the
    files given; a missing file or a folder without images is an error."""
    given = [Path(p) for p in x] if isinstance(x, list | tuple) else [Path(x)]
    paths: list[Path] = []
    for path in given:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not is_hidden(p)
                           and p.suffix.lower() in SUFFIXES)
            if not found:
                raise DataError(f"'{path}' is a folder without images (looked for "
                                f"{', '.join(sorted(SUFFIXES))} at every depth). Give the "
                                "folder that holds the images to score.")
            paths += found
        elif not path.is_file():
            raise DataError(f"'{path}' does not exist. {IMAGE_INPUTS}")
        else:
            paths.append(path)
    return paths


def read_images(x: str | Path | list | tuple, shape: tuple[int, ...]) -> ImageFiles:
    """The images at `x` as rows of the run's (C, H, W) `shape`, uint8 as the loader read
    them."""
    paths = image_paths(x)
    notes: list[str] = []
    images = _decode_all(paths, notes)
    for note in notes:
        _note(note)
    size = tuple(shape[1:])
    pixels, resized = run_sized(_run_channels(images, shape[0]), size)
    if resized:
        _note(f"{_images(len(resized))} resized to {size[0]}x{size[1]} (antialiased "
              f"bilinear, as the run's loader resized its own; e.g. {paths[resized[0]]} was "
              f"{tuple(images[resized[0]].shape[1:])})")
    return ImageFiles(pixels, [str(p) for p in paths])


def run_sized(images: list[torch.Tensor], size: tuple[int, ...]) -> tuple[np.ndarray, list[int]]:
    """(N, C, H, W) uint8 of (C, h, w) images, each of another size resized to `size`, and
    the rows resized. Each image's own size decides (review s13 VA4: a set of the resized rows
    rebuilt per image took 5.9 s for 20,000 photos before any decoding)."""
    resized = [i for i, img in enumerate(images) if tuple(img.shape[1:]) != size]
    pixels = np.stack([(resize(img[None], size)[0] if tuple(img.shape[1:]) != size else
                        img).numpy() for img in images])
    return pixels, resized


def _run_channels(images: list[torch.Tensor], channels: int) -> list[torch.Tensor]:
    """Each (C, H, W) image with the run's channel count, as _same_channels made them."""
    gray = [_is_gray(img) for img in images]
    if channels == 3:
        repeated = sum(img.shape[0] == 1 for img in images)
        if repeated:
            _note(f"{_images(repeated)} gray, repeated to RGB as the run read its gray ones")
        return [img.expand(3, *img.shape[1:]) for img in images]
    dropped = sum(g and img.shape[0] == 3 for img, g in zip(images, gray, strict=True))
    if dropped:
        _note(f"{_images(dropped)} RGB with three equal channels (gray saved as RGB) read as "
              "1-channel gray, as the run read its own")
    colour = sum(not g for g in gray)
    if colour:
        _note(f"{_images(colour)} in colour, converted to gray ({'/'.join(map(str, LUMA))} "
              "of R/G/B): the run trained on gray images only, so its answers on these "
              "are less sure than on gray ones")
    return [img[:1] if g else _luma(img) for img, g in zip(images, gray, strict=True)]


def _luma(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) -> (1, H, W) gray, in the image's dtype (whole numbers rounded)."""
    gray = (image.float() * torch.tensor(LUMA).view(3, 1, 1)).sum(0, keepdim=True)
    if image.dtype.is_floating_point:
        return gray.to(image.dtype)
    return gray.round().clamp(0, 255).to(image.dtype)


def as_run_images(array: np.ndarray, shape: tuple[int, ...], channels: bool = True
                  ) -> np.ndarray:
    """An (N, C, H, W), (N, H, W, C) or, for a 1-channel run, (N, H, W) array with the run's
    layout, channels and size: gray saved as RGB kept once, gray repeated to RGB (unless not
    `channels`: a .npz run converted none), other sizes resized; an array of another rank
    comes back as it was, for the shape check to explain."""
    if array.ndim == 3 and shape[0] == 1:  # (N, H, W) gray images; one (1, H, W) image
        array = array[:, None]  # without its row axis reads the same
    if array.ndim == 4 and array.shape[1] not in (1, 3) and array.shape[3] in (1, 3):
        _note(f"the images were read channels last, {array.shape} = (N, H, W, C), as "
              "Pillow and numpy store them, and given to the model channels first")
        array = array.transpose(0, 3, 1, 2)
    if array.ndim != 4 or array.shape[1] not in (1, 3) or len(array) == 0:
        return array
    if channels and array.shape[1] != shape[0]:
        images = _run_channels(list(torch.as_tensor(np.ascontiguousarray(array))), shape[0])
        array = torch.stack(images).numpy()
    size = tuple(shape[1:])
    if array.shape[2:] != size:
        _note(f"{_images(len(array))} of {array.shape[2]}x{array.shape[3]} resized to "
              f"{size[0]}x{size[1]}, the run's input size (antialiased bilinear, as the "
              "run's loader resized its own)")
        array = resize_images(array, (size[0], size[1]))
    return array


def _images(count: int) -> str:
    return f"{count} image{'' if count == 1 else 's'}"


def _note(message: str) -> None:
    warn_at_caller(message)
