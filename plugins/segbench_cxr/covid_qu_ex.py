"""covid-qu-ex: the Kaggle COVID-QU-Ex chest X-ray dataset in its downloaded layout.

Under the data root (Tahir et al., 2021, "COVID-19 infection localization and
severity grading from chest X-ray images"):

    Lung Segmentation Data/Lung Segmentation Data/{Train,Val,Test}/{COVID-19,Non-COVID,Normal}/
        images/, lung masks/
    Infection Segmentation Data/Infection Segmentation Data/{Train,Val,Test}/{COVID-19,Non-COVID,Normal}/
        images/, lung masks/, infection masks/

Task "lung" reads the lung set, "infection" the infection set. Images are
256x256 8-bit PNGs, masks {0, 255} with the image's file name. A sample id is
the image path under the root without its extension, e.g.
"Infection Segmentation Data/Infection Segmentation Data/Test/COVID-19/images/covid_1583";
its metadata `group` is the class folder (COVID-19, Non-COVID, Normal).
"""

from __future__ import annotations

from pathlib import Path

from segbench import DatasetOptions, SegbenchError
from segbench.errors import unknown
from segbench_cxr._files import FilePairSource, image_files, require_dir

SPLIT_FOLDERS = {"train": "Train", "val": "Val", "test": "Test"}
CLASSES = ("COVID-19", "Non-COVID", "Normal")
# task -> (set folder, mask folder)
TASK_FOLDERS = {
    "lung": ("Lung Segmentation Data", "lung masks"),
    "infection": ("Infection Segmentation Data", "infection masks"),
}


class CovidQuExSource(FilePairSource):
    """Samples of one task's set; sample ids sorted, masks matched by file name."""

    name = "covid-qu-ex"

    def __init__(self, root: Path, task: str) -> None:
        if task not in TASK_FOLDERS:
            raise unknown("task", task, TASK_FOLDERS)
        root = Path(root).expanduser()
        if not root.is_dir():
            raise SegbenchError(f"COVID-QU-Ex data root not found: {root}")
        super().__init__(root)
        set_folder, self.mask_folder = TASK_FOLDERS[task]
        self.set_dir = root / set_folder / set_folder

    @classmethod
    def from_options(cls, options: DatasetOptions) -> CovidQuExSource:
        if options.root is None:
            raise SegbenchError("covid-qu-ex needs --data-root: the folder holding 'Lung Segmentation Data'")
        return cls(options.root, options.task)

    def _scan(self, split: str) -> dict[str, tuple[Path, Path]]:
        if not self.set_dir.is_dir():
            raise SegbenchError(
                f"COVID-QU-Ex folder not found: expected {self.set_dir} "
                "(--data-root is the folder the Kaggle archive was extracted into)"
            )
        split_dir = require_dir(self.set_dir / SPLIT_FOLDERS[split], "COVID-QU-Ex split")
        pairs: dict[str, tuple[Path, Path]] = {}
        for label in CLASSES:
            images_dir = require_dir(split_dir / label / "images", "COVID-QU-Ex images")
            masks_dir = require_dir(split_dir / label / self.mask_folder, "COVID-QU-Ex masks")
            mask_names = {path.name for path in masks_dir.iterdir()}
            for image in image_files(images_dir).values():
                mask = masks_dir / image.name
                if image.name not in mask_names:
                    raise SegbenchError(f"image {image} has no mask: expected {mask}")
                pairs[image.relative_to(self.root).with_suffix("").as_posix()] = (image, mask)
        if not pairs:
            raise SegbenchError(f"no images in the COVID-QU-Ex split folder {split_dir}")
        return dict(sorted(pairs.items()))

    def metadata(self, split: str, sample_id: str) -> dict[str, str]:
        """{"group": the sample's class folder}: COVID-19, Non-COVID or Normal."""
        image, _ = self._pair(split, sample_id)
        return {"group": image.parent.parent.name}
