"""`segbench data layout covid-qu-ex`: lay a downloaded COVID-QU-Ex copy out where covid-qu-ex reads it.

The source (a folder, or a bare git repository read with git, no work tree) holds the Kaggle download as
extracted, or its Infection Segmentation Data alone: {Train,Val,Test}/{COVID-19,Non-COVID,Normal}/{images,
lung masks,infection masks}, directly under the source (or the folder `path` in it) or under
"Infection Segmentation Data/[Infection Segmentation Data/]". The public snapshot
github.com/KevenDuan/Fine-grained-recognition-of-medical-images-based-on-dynamic-focus-search holds that set
in dataset/ (path "dataset").

The infection set goes to ROOT/Infection Segmentation Data/Infection Segmentation Data; the lung set, where
the source has one, to ROOT/Lung Segmentation Data/Lung Segmentation Data, else the infection set's images
and lung masks stand in for it there. Files are hard-linked where the filesystem allows, else copied (a git
blob is written once per content); a rerun replaces the files it lays out.
"""

from __future__ import annotations

from pathlib import Path

from segbench import SegbenchError
from segbench.data.tree import FolderTree, SourceTree, open_tree
from segbench.io import atomic_link
from segbench_cxr.covid_qu_ex import CLASSES, SPLIT_FOLDERS, TASK_FOLDERS

SUBFOLDERS = {"infection": ("images", "lung masks", "infection masks"), "lung": ("images", "lung masks")}


def _members(files: list[str], task: str) -> tuple[str, dict[str, str]]:
    """(where, {source path: path under the set folder}) of `task`'s set in `files`, at the first place
    that holds its masks; ("", {}) if none does."""
    name, mask_folder = TASK_FOLDERS[task]
    splits = set(SPLIT_FOLDERS.values())
    for prefix in (f"{name}/{name}/", f"{name}/", *([""] if task == "infection" else [])):
        found = {}
        for path in files:
            parts = path[len(prefix):].split("/") if path.startswith(prefix) else []
            if len(parts) == 4 and parts[0] in splits and parts[1] in CLASSES and parts[2] in SUBFOLDERS[task]:
                found[path] = path[len(prefix):]
        if any(tail.split("/")[2] == mask_folder for tail in found.values()):
            return prefix, found
    return "", {}


def _not_found(tree: SourceTree, files: list[str], path: str) -> SegbenchError:
    """No infection set: what was expected, and a --path to try where one lies deeper."""
    deeper = next(("/".join(parts[:-4]) for parts in (file.split("/") for file in files)
                   if len(parts) > 4 and parts[-2] == "infection masks" and parts[-4] in SPLIT_FOLDERS.values()), "")
    hint = f"; it has one under {deeper!r}: pass --path {'/'.join(filter(None, [path, deeper]))}" if deeper else ""
    return SegbenchError(
        f"no COVID-QU-Ex infection set in {tree.where}: expected {', '.join(SPLIT_FOLDERS.values())} folders of "
        f"{', '.join(CLASSES)} folders of {', '.join(SUBFOLDERS['infection'])}, directly there or under "
        f"'Infection Segmentation Data/Infection Segmentation Data'{hint}")


def _images(members: dict[str, str]) -> int:
    return sum(tail.split("/")[2] == "images" for tail in members.values())


def lay_out(source: Path, root: Path, path: str = "") -> list[str]:
    """Lay the copy at `source` (its folder `path`) out under `root`; the lines that say what was done."""
    tree = open_tree(source, path)
    files = tree.files()
    (infection_at, infection), (lung_at, lung) = _members(files, "infection"), _members(files, "lung")
    if not infection:
        raise _not_found(tree, files, path)
    root = Path(root).expanduser()
    sets = {task: root / name / name for task, (name, _) in TASK_FOLDERS.items()}
    placed = tree.place({file: sets["infection"] / tail for file, tail in infection.items()}
                        | {file: sets["lung"] / tail for file, tail in lung.items()})
    lines = [f"infection: {_images(infection):,} images with their lung and infection masks from {tree.where} "
             f"in {sets['infection']}"]
    if lung:
        lines.append(f"lung: {_images(lung):,} images with their lung masks from {tree.where} in {sets['lung']}")
    else:
        for tail in infection.values():
            if tail.split("/")[2] in SUBFOLDERS["lung"]:
                placed.add(atomic_link(sets["infection"] / tail, sets["lung"] / tail))
        lines.append(f"lung: {tree.where} has no Lung Segmentation Data; the infection set's {_images(infection):,} "
                     f"images and their lung masks stand in for it in {sets['lung']}, where --task lung reads them")
    lines.append(f"{placed.linked:,} files hard-linked, {placed.written:,} written")
    if isinstance(tree, FolderTree) and lung and {infection_at, lung_at} == {
            f"{name}/{name}/" for name, _ in TASK_FOLDERS.values()}:
        lines.append(f"(the source is laid out as covid-qu-ex reads it already: --data-root {tree.top} works too)")
    lines.append(f"check it: segbench data check covid-qu-ex {root}")
    return lines
