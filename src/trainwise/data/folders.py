"""Where an image folder's images are: root/<class>/<image>, or the same under split folders
(root/train/<class>/..., root/test/<class>/...), the layout most downloaded sets ship in.

Hidden entries (names starting with '.': `.DS_Store`, `._x.png` AppleDouble copies,
`.ipynb_checkpoints/`) and `__MACOSX/` are skipped at every depth: they are never images
of the data set, and a checkpoint copy would be an exact duplicate. Every skip is recorded,
so loading can say what it left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trainwise.data.errors import DataError

SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
SYSTEM_FOLDERS = {"__MACOSX"}  # a zip made on a Mac: resource-fork copies of every file
# split folder name (any case) -> its role; val is merged into the pool, because the split
# draws its own validation part from the pool and TaskData has no slot for a shipped one
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "test": "test", "testing": "test"}


def is_hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name in SYSTEM_FOLDERS


@dataclass
class FolderScan:
    """(image, class name) pairs per part ("pool", and "test" when a test/ folder ships),
    the split folders each part came from, and what was left out, relative to root."""

    root: Path
    parts: dict[str, list[tuple[Path, str]]] = field(default_factory=dict)
    split_folders: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # files with another suffix
    hidden: list[str] = field(default_factory=list)  # hidden/system entries; folders end in /
    nested: list[str] = field(default_factory=list)  # images below their class's own folder

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def visible(self, folder: Path) -> list[Path]:
        """folder's entries, sorted, without the hidden ones (recorded instead)."""
        entries = []
        for entry in sorted(folder.iterdir()):
            if is_hidden(entry):
                self.hidden.append(self.rel(entry) + ("/" if entry.is_dir() else ""))
            else:
                entries.append(entry)
        return entries

    def images_under(self, folder: Path) -> list[Path]:
        """Images at any depth below folder; symlinked sub-folders are not entered (as rglob),
        so a link back up cannot loop."""
        images = []
        for entry in self.visible(folder):
            if entry.is_dir():
                images += [] if entry.is_symlink() else self.images_under(entry)
            elif entry.is_file() and entry.suffix.lower() in SUFFIXES:
                images.append(entry)
            elif entry.is_file():
                self.skipped.append(self.rel(entry))
        return images

    def read_classes(self, folder: Path, entries: list[Path],
                     min_classes: int = 2) -> list[tuple[Path, str]]:
        """(image, class) for each sub-folder of folder (its visible `entries`); a test or
        val folder may hold a single class, the training data needs two."""
        classes = [e for e in entries if e.is_dir()]
        self.skipped += [self.rel(e) for e in entries if e.is_file()]
        if len(classes) < min_classes:
            raise DataError(f"image folder '{folder}' has {len(classes)} class sub-folders ("
                            f"{', '.join(c.name for c in classes) or 'none'}); it needs one "
                            f"sub-folder per class (at least {min_classes}), e.g. "
                            "root/cat/1.png, root/dog/2.png.")
        if _above_classes(classes):
            raise _nesting_error(folder, classes)
        files = []
        for class_folder in classes:
            images = sorted(self.images_under(class_folder))
            if not images:
                kinds = ", ".join(sorted(SUFFIXES))
                raise DataError(f"class folder '{class_folder}' holds no images ({kinds}). "
                                "Add images or remove the folder.")
            self.nested += [self.rel(p) for p in images if p.parent != class_folder]
            files += [(p, class_folder.name) for p in images]
        return files


def _direct_images(folder: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in SUFFIXES and not is_hidden(p)
               for p in folder.iterdir())


def _above_classes(folders: list[Path]) -> bool:
    """No folder holds an image itself, yet some hold sub-folders: these folders are a level
    above the class folders (train/ and test/, or a grouping of classes)."""
    if any(_direct_images(f) for f in folders):
        return False
    return any(p.is_dir() and not is_hidden(p) for f in folders for p in f.iterdir())


def _nesting_error(folder: Path, folders: list[Path]) -> DataError:
    names = ", ".join(f.name for f in folders[:5])
    return DataError(
        f"the sub-folders of '{folder}' ({names}) hold only folders, no images: trainwise reads "
        f"one sub-folder per class, root/<class>/<image>. Point data.source at the folder "
        f"whose sub-folders are the classes (e.g. '{folders[0]}'), or, if these are split "
        f"folders, name them train/ and test/ (val/ is merged into train).")


def _split_roles(folder: Path, folders: list[Path]) -> dict[str, str]:
    """folder name -> role, when every sub-folder is a split folder and one is train."""
    roles = {f.name: SPLIT_FOLDERS.get(f.name.lower(), "") for f in folders}
    if "" in roles.values() or "train" not in roles.values():
        raise _nesting_error(folder, folders)
    return roles


def scan_folder(root: Path) -> FolderScan:
    """Plain class folders, or split folders: train/ (+ val/) is the pool, test/ the test."""
    if not root.is_dir():
        raise DataError(f"image folder '{root}' does not exist or is not a folder.")
    scan = FolderScan(root)
    entries = scan.visible(root)
    folders = [e for e in entries if e.is_dir()]
    if not _above_classes(folders):
        scan.parts["pool"] = scan.read_classes(root, entries)
        return scan
    scan.skipped += [scan.rel(e) for e in entries if e.is_file()]
    for name, role in _split_roles(root, folders).items():
        part = "test" if role == "test" else "pool"
        files = scan.read_classes(root / name, scan.visible(root / name),
                                  min_classes=2 if role == "train" else 1)
        scan.parts.setdefault(part, []).extend(files)
        scan.split_folders.setdefault(part, []).append(name)
    return scan
