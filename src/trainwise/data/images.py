"""Image folders (one sub-folder per class) -> TaskData of (N, C, H, W) uint8 pixels.

Decoding is Pillow's: torchvision's own decoders are deprecated since 0.29 (in favour of
TorchCodec), and Pillow comes with torchvision anyway. A file that fails to decode stops
loading with its name: dropping it silently would change the data set without anyone knowing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch

from trainwise.data.errors import DataError
from trainwise.data.task import TaskData

SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
NUM_NAMED = 5  # files named in an error message
KEEP_MODES = {"L": 1, "RGB": 3}  # Pillow modes kept as they are; others become RGB


def _decode(path: Path) -> tuple[torch.Tensor, bool]:
    """(C, H, W) uint8 with C 1 or 3, and whether the stored mode had to be converted."""
    from PIL import Image

    with Image.open(path) as handle:
        handle.load()  # decode now, inside the caller's try: a truncated file fails here
        mode = handle.mode
        if mode in KEEP_MODES:
            array = np.asarray(handle)
        elif mode.startswith("I;16"):  # 16-bit gray: keep the high byte
            array = (np.asarray(handle).astype(np.uint16) >> 8).astype(np.uint8)
        else:  # palette, RGBA, LA, CMYK, 1-bit...: alpha dropped, colours kept
            array = np.asarray(handle.convert("L" if mode in ("1", "LA") else "RGB"))
    array = array.reshape(*array.shape[:2], -1)
    return torch.from_numpy(array.copy()).permute(2, 0, 1), mode not in KEEP_MODES


def _scan(root: Path) -> tuple[list[str], list[tuple[Path, int]], list[str]]:
    """Class names, (file, label) pairs, and the files skipped because they are not images."""
    if not root.is_dir():
        raise DataError(f"image folder '{root}' does not exist or is not a folder.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"image folder '{root}' has {len(classes)} class sub-folders ("
                        f"{', '.join(classes) or 'none'}); it needs one sub-folder per class "
                        "(at least two), e.g. root/cat/1.png, root/dog/2.png.")
    files, skipped = [], [p.name for p in root.iterdir() if p.is_file()]
    for label, name in enumerate(classes):
        found = sorted(p for p in (root / name).rglob("*") if p.is_file())
        images = [p for p in found if p.suffix.lower() in SUFFIXES]
        skipped += [str(p.relative_to(root)) for p in found if p.suffix.lower() not in SUFFIXES]
        if not images:
            kinds = ", ".join(sorted(SUFFIXES))
            raise DataError(f"class folder '{root / name}' holds no images ({kinds}). Add "
                            "images or remove the folder.")
        files += [(p, label) for p in images]
    return classes, files, skipped


def _decode_all(files: list[tuple[Path, int]], notes: list[str]) -> list[torch.Tensor]:
    images, failed, converted = [], [], 0
    for path, _ in files:
        try:
            image, changed = _decode(path)
        except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError...
            failed.append(f"{path} ({type(exc).__name__}: {str(exc)[:80]})")
            continue
        images.append(image)
        converted += changed
    if failed:
        raise DataError(f"{len(failed)} of {len(files)} images could not be decoded: "
                        f"{'; '.join(failed[:NUM_NAMED])}. Re-save or delete these files; "
                        "trainwise does not skip them silently.")
    if converted:
        notes.append(f"{converted} images stored with alpha, a palette or 16 bits were "
                     "converted to 8-bit gray/RGB")
    return images


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear, as torchvision's resize, without importing transforms (~2 s)."""
    scaled = torch.nn.functional.interpolate(image[None].float(), size=size, mode="bilinear",
                                             antialias=True, align_corners=False)
    return scaled[0].round().clamp(0, 255).to(torch.uint8)


def _uniform(images: list[torch.Tensor], image_size: int, notes: list[str]) -> np.ndarray:
    """One channel count (RGB if any image has colour) and one size (image_size, or the most
    common size); every change is counted in notes."""
    colour = any(img.shape[0] >= 3 for img in images)
    channels = 3 if colour else 1
    sizes = Counter(tuple(img.shape[1:]) for img in images)
    size = (image_size, image_size) if image_size else sizes.most_common(1)[0][0]
    out = np.empty((len(images), channels, *size), dtype=np.uint8)
    converted = resized = 0
    for i, img in enumerate(images):
        if img.shape[0] != channels:
            img, converted = img.expand(channels, *img.shape[1:]), converted + 1
        if tuple(img.shape[1:]) != size:
            img, resized = _resize(img, size), resized + 1
        out[i] = img.numpy()
    if converted:
        notes.append(f"{converted} gray images repeated to RGB to match the colour ones")
    if resized:
        notes.append(f"{resized} images resized to {size[0]}x{size[1]}")
    return out


def load_image_folder(root: Path, image_size: int = 0) -> TaskData:
    """root/<class>/<file>: classes in sorted order; files not images are counted in notes."""
    classes, files, skipped = _scan(root)
    notes = []
    if skipped:
        notes.append(f"skipped {len(skipped)} files that are not images (e.g. "
                     f"{', '.join(skipped[:3])})")
    x = _uniform(_decode_all(files, notes), image_size, notes)
    return TaskData(name=root.name, kind="image", task="classification", x=x,
                    y=np.array([label for _, label in files], dtype=np.int64),
                    class_names=classes, notes=notes, files=[str(p) for p, _ in files])
