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

GROUPS_FILE = "groups.csv"  # root/groups.csv: file,<group column>, one row per image
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


def _groups_table(root: Path, column: str) -> tuple[dict[str, str], str]:
    """{image path relative to root, '/'-separated: its group} and the group column's name."""
    import pandas as pd

    table = pd.read_csv(root / GROUPS_FILE, dtype=str, keep_default_na=False)
    others = [c for c in table.columns if c != "file"]
    name = column or (others[0] if len(others) == 1 else "")
    if "file" not in table.columns or name not in others:
        raise DataError(f"'{root / GROUPS_FILE}' has columns {list(table.columns)}; it needs "
                        "a 'file' column (image paths relative to the folder, e.g. cat/1.png) "
                        f"and {f'the column {column!r}' if column else 'one group column'}"
                        f"{'' if column else ' (or name it with split.group_column)'}.")
    files = table["file"].str.replace("\\", "/").str.removeprefix("./")
    if files.duplicated().any():
        raise DataError(f"'{root / GROUPS_FILE}' lists {int(files.duplicated().sum())} files "
                        f"more than once (e.g. {files[files.duplicated()].iloc[0]}); give each "
                        "image one row.")
    return dict(zip(files, table[name], strict=True)), name


def read_groups(root: Path, files: list[Path], column: str) -> tuple[list[str], str] | None:
    """One group per image from root/groups.csv, and the column it came from; None when there
    is no such file and no column asked for. Photos of one subject (a patient, a person) must
    stay on one side of the split, and a folder has no column of its own to say so."""
    if not (root / GROUPS_FILE).is_file():
        if column:
            raise DataError(f"split.group_column = '{column}' names a column, but the image "
                            f"folder '{root}' has no columns. Add '{root / GROUPS_FILE}' with "
                            f"a 'file' column (image paths relative to the folder, e.g. "
                            f"cat/1.png) and a '{column}' column, or remove split.group_column.")
        return None
    groups, name = _groups_table(root, column)
    relative = [p.relative_to(root).as_posix() for p in files]
    missing = [f for f in relative if not groups.get(f)]  # no row, or an empty cell
    if missing:
        raise DataError(f"'{root / GROUPS_FILE}' gives no group for {len(missing)} of "
                        f"{len(files)} images (e.g. {', '.join(missing[:3])}); add a row for "
                        "each image.")
    return [groups[f] for f in relative], name
