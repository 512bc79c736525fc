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
from trainwise.data.folders import GROUPS_FILE, FolderScan, read_groups, scan_folder
from trainwise.data.keys import NONE
from trainwise.data.task import Key, TaskData
from trainwise.findings import Finding, info

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


def _decode_all(paths: list[Path], notes: list[str]) -> list[torch.Tensor]:
    images, failed, converted = [], [], 0
    for path in paths:
        try:
            image, changed = _decode(path)
        except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError...
            failed.append(f"{path} ({type(exc).__name__}: {str(exc)[:80]})")
            continue
        images.append(image)
        converted += changed
    if failed:
        raise DataError(f"{len(failed)} of {len(paths)} images could not be decoded: "
                        f"{'; '.join(failed[:NUM_NAMED])}. Re-save or delete these files; "
                        "trainwise does not skip them silently.")
    if converted:
        notes.append(f"{converted} images stored with alpha, a palette or 16 bits were "
                     "converted to 8-bit gray/RGB")
    return images


def resize(batch: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) antialiased bilinear, as torchvision's resize, without importing
    transforms (~2 s); uint8 pixels stay uint8, anything else comes back float32."""
    scaled = torch.nn.functional.interpolate(batch.float(), size=size, mode="bilinear",
                                             antialias=True, align_corners=False)
    if batch.dtype == torch.uint8:
        return scaled.round().clamp(0, 255).to(torch.uint8)
    return scaled


def resize_images(x: np.ndarray, size: int | tuple[int, int], chunk: int = 256) -> np.ndarray:
    """(N, C, H, W) -> (N, C, h, w) (`size`: (h, w), or one side for a square), `chunk` rows
    at a time: a float32 copy of a whole set of large images may not fit in memory (50k RGB
    224x224 images: 30 GB). Each image is resized on its own, so the chunks change nothing."""
    height, width = (size, size) if isinstance(size, int) else size
    out = np.empty((len(x), x.shape[1], height, width), dtype=x.dtype)
    for start in range(0, len(x), chunk):
        rows = torch.as_tensor(np.ascontiguousarray(x[start:start + chunk]))
        out[start:start + chunk] = resize(rows, (height, width)).numpy()
    return out


def _is_gray(image: torch.Tensor) -> bool:
    """One channel, or three equal ones: a gray picture saved as RGB (common for JPEGs)."""
    return image.shape[0] == 1 or bool((image[1:] == image[:1]).all())


def _same_channels(images: list[torch.Tensor], notes: list[str]) -> list[torch.Tensor]:
    """All 1-channel when every image is gray (3 equal channels kept once: repeating them would
    triple memory and inputs for no information), else all RGB; each change counted."""
    if all(_is_gray(img) for img in images):
        dropped = sum(img.shape[0] == 3 for img in images)
        if dropped:
            notes.append(f"{dropped} RGB images with three equal channels (gray saved as RGB) "
                         "read as 1-channel gray, like the rest of the folder")
        return [img[:1] for img in images]
    gray = sum(img.shape[0] == 1 for img in images)
    if gray:
        notes.append(f"{gray} gray images repeated to RGB to match the colour ones")
    return [img.expand(3, *img.shape[1:]) for img in images]


def _uniform(images: list[torch.Tensor], image_size: int, notes: list[str]) -> np.ndarray:
    """One channel count and one size (image_size, or the most common size); every change is
    counted in notes."""
    images = _same_channels(images, notes)
    sizes = Counter(tuple(img.shape[1:]) for img in images)
    size = (image_size, image_size) if image_size else sizes.most_common(1)[0][0]
    out = np.empty((len(images), images[0].shape[0], *size), dtype=np.uint8)
    resized = 0
    for i, img in enumerate(images):
        if tuple(img.shape[1:]) != size:
            img, resized = resize(img[None], size)[0], resized + 1
        out[i] = img.numpy()
    if resized:
        notes.append(f"{resized} images resized to {size[0]}x{size[1]}")
    return out


def _scan_notes(scan: FolderScan) -> list[str]:
    """What the scan left out, and the images it found deeper than their class folder."""
    notes, left_out = [], []
    if scan.skipped:
        left_out.append(f"{len(scan.skipped)} files that are not images")
    if scan.hidden:
        left_out.append(f"{len(scan.hidden)} hidden or system files and folders, named .* "
                        "or __MACOSX")
    if left_out:
        examples = scan.skipped[:3] + scan.hidden[:2]
        notes.append(f"skipped {' and '.join(left_out)} (e.g. {', '.join(examples)})")
    if scan.nested:
        notes.append(f"{len(scan.nested)} images in sub-folders of a class folder were read as "
                     f"that class (e.g. {', '.join(scan.nested[:2])}); move them out if they "
                     "belong to no class")
    return notes


def _labels(classes: list[str], files: list[tuple[Path, str]], root: Path) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({name for _, name in files} - set(index))
    if unknown:
        raise DataError(f"the test folder of '{root}' has class folders {unknown[:5]} that the "
                        "training folders lack; the model cannot predict a class it never saw. "
                        "Add training images of these classes or remove those test folders.")
    return np.array([index[name] for _, name in files], dtype=np.int64)


def _split_folder_finding(scan: FolderScan) -> list[Finding]:
    """What a train/ + test/ layout was read as (nothing for plain class folders)."""
    if not scan.split_folders:
        return []
    pool, test = scan.split_folders["pool"], scan.split_folders.get("test", [])
    num_pool, num_test = len(scan.parts["pool"]), len(scan.parts.get("test", []))
    merged = " (merged: the split draws its own validation part)" if len(pool) > 1 else ""
    held_out = (f"{', '.join(f'{t}/' for t in test)} ({num_test} images) is the held-out test "
                "part, scored once at the end" if test else
                "there is no test/ folder, so the split holds out a test part from the pool")
    return [info("data", "split_folders",
                 f"Read '{scan.root.name}' as split folders: {', '.join(f'{p}/' for p in pool)} "
                 f"({num_pool} images) is the pool that training and validation are drawn from"
                 f"{merged}; {held_out}.", pool_folders=pool, test_folders=test,
                 num_pool=num_pool, num_test=num_test)]


def _add_groups(data: TaskData, scan: FolderScan, column: str) -> None:
    """Groups from root/groups.csv as a declared key ('none' turns it off)."""
    pool = [path for path, _ in scan.parts["pool"]]
    found = None if column == NONE else read_groups(scan.root, pool, column)
    if found is None:
        return
    data.groups, name = np.asarray(found[0]), found[1]
    data.keys = [Key(name, "group", declared=True)]
    data.notes.append(f"groups from {GROUPS_FILE} column '{name}': "
                      f"{len(set(found[0]))} groups over {len(found[0])} images, each kept "
                      "on one side of the split")


def load_image_folder(root: Path, image_size: int = 0, group_column: str = "") -> TaskData:
    """root/<class>/<file>, or split folders of those (root/train/<class>/..., root/test/...):
    classes in sorted order; what was left out or changed is counted in notes. Groups come
    from root/groups.csv (file,<group column>) when it exists or group_column names one."""
    scan = scan_folder(root)
    pool, test = scan.parts["pool"], scan.parts.get("test", [])
    classes = sorted({name for _, name in pool})
    y, y_test = _labels(classes, pool, root), _labels(classes, test, root)
    if GROUPS_FILE in scan.skipped and group_column != NONE:  # read, not skipped
        scan.skipped.remove(GROUPS_FILE)
    notes = _scan_notes(scan)
    decoded = _decode_all([path for path, _ in pool + test], notes)
    shapes = np.array([img.shape for img in decoded[:len(pool)]], dtype=np.int64)  # as stored
    x = _uniform(decoded, image_size, notes)
    data = TaskData(name=root.name, kind="image", task="classification", x=x[:len(pool)], y=y,
                    class_names=classes, notes=notes, files=[str(p) for p, _ in pool],
                    findings=_split_folder_finding(scan), stored_shapes=shapes)
    if data.findings:  # also a note, which the terminal prints: it decides what is tested
        notes.insert(0, data.findings[0].message.rstrip("."))
    if test:
        data.x_test, data.y_test = x[len(pool):], y_test
        data.test_files = [str(p) for p, _ in test]
    _add_groups(data, scan, group_column)
    return data
