"""The 35 MedSegBench datasets and the segbench tasks each serves (pure Python: read when plugins load).

Facts from `medsegbench.info.INFO` of the `medsegbench` 1.0.0 wheel: the flag (file stem), the class the
package names it by, image channels, train/val/test counts and, for the multi-class datasets, the pixel
label of each mask value. What the tasks take:

- `foreground`: label != 0. The binary datasets store {0, 1} (pandental and dynamicnuclear: "non-zero"
  is foreground); a multi-class dataset serves it only where value 0 is "background" (m2caiseg's 0 is
  "unknown", so it does not).
- one task per class of a multi-class dataset, named after its pixel label ("fetal head" ->
  `fetal-head`): label == that class's value.
- idrib's four lesion masks (`<split>_label_C1`..`C4`, shared images): `microaneurysms`, `hemorrhages`,
  `hard-exudates`, `optic-disc`. The other datasets' categories (subsets of images) are not served.
- segbench's own task names for the same foreground, where the source dataset is clear: covidquex
  `infection` (its counts are the COVID-19 images of COVID-QU-Ex's infection set, 1,864/466/583, and
  MedSegBench's published U-Net Dice there, 0.73-0.76 in additional_files/all_result.xlsx, is an
  infection score, not a lung one), covid19radio `lung` (the COVID-19 Radiography Database's 21,165
  images, which carry lung masks only; Dice 0.99), mosmedplus `infection` (MosMedData+'s 2,729 CT
  lesion slices).
"""

from __future__ import annotations

from dataclasses import dataclass

SIZES = (128, 256, 512)  # the package's `size` argument: files <flag>_<size>.npz
LESIONS = ("microaneurysms", "hemorrhages", "hard-exudates", "optic-disc")  # idrib's C1..C4


@dataclass(frozen=True)
class Flag:
    """One MedSegBench dataset: `name` is the package's flag and file stem."""

    name: str
    python_class: str
    channels: int  # 1 grey, 3 RGB
    samples: tuple[int, int, int]  # train, val, test
    classes: tuple[str, ...] = ()  # multi-class: pixel label of each value, 0 first; () for binary
    aliases: tuple[str, ...] = ()  # segbench task names of the binary foreground

    @property
    def description(self) -> str:
        kind = f"{len(self.classes)}-class" if self.classes else "binary"
        counts = "/".join(f"{n:,}" for n in self.samples)
        return (f"{self.python_class}: {counts} {'grey' if self.channels == 1 else 'RGB'} images, "
                f"{kind} masks; {self.name}_<size>.npz under --data-root")


@dataclass(frozen=True)
class Target:
    """What a task reads: the label array `<split>_label<suffix>` and its foreground (value None: != 0)."""

    suffix: str = ""
    value: int | None = None


def targets(flag: Flag) -> dict[str, Target]:
    """The tasks `flag` serves, by segbench task name."""
    served = {alias: Target() for alias in flag.aliases}
    if not flag.classes or flag.classes[0] == "background":
        served["foreground"] = Target()
    served.update({label.lower().replace(" ", "-"): Target(value=value)
                   for value, label in enumerate(flag.classes) if value})
    if flag.name == "idrib":
        served.update({lesion: Target(suffix=f"_C{k}") for k, lesion in enumerate(LESIONS, start=1)})
    return served


FLAGS = (
    Flag("kvasir", "KvasirMSBench", 3, (700, 100, 200)),
    Flag("isic2018", "Isic2018MSBench", 3, (2594, 100, 1000)),
    Flag("drive", "DriveMSBench", 3, (18, 2, 20)),
    Flag("chasedb1", "ChaseDB1MSBench", 3, (19, 2, 7)),
    Flag("dca1", "Dca1MSBench", 1, (93, 13, 28)),
    Flag("chuac", "ChuacMSBench", 1, (21, 3, 6)),
    Flag("wbc", "WbcMSBench", 3, (280, 40, 80), classes=("background", "cytoplasm", "nucleus")),
    Flag("idrib", "IdribMSBench", 3, (47, 6, 27)),
    Flag("cellnuclei", "CellnucleiMSBench", 3, (469, 67, 134)),
    Flag("pandental", "PandentalMSBench", 1, (81, 11, 24)),
    Flag("bbbc010", "Bbbc010MSBench", 1, (70, 10, 20)),
    Flag("dynamicnuclear", "DynamicNuclearMSBench", 1, (4950, 1417, 717)),
    Flag("nuset", "NusetMSBench", 1, (2385, 340, 683)),
    Flag("nuclei", "NucleiMSBench", 3, (98, 14, 29)),
    Flag("tnbcnuclei", "TnbcnucleiMSBench", 3, (35, 5, 10)),
    Flag("monusac", "MonusacMSBench", 3, (188, 21, 101),
         classes=("background", "Epithelial", "Lymphocyte", "Macrophage", "Neutrophil", "Ambiguous")),
    Flag("deepbacs", "DeepbacsMSBench", 1, (17, 2, 15)),
    Flag("brifiseg", "BriFiSegMSBench", 1, (1005, 115, 240)),
    Flag("busi", "BusiMSBench", 1, (452, 64, 131)),
    Flag("covid19radio", "Covid19RadioMSBench", 1, (14814, 2115, 4236), aliases=("lung",)),
    Flag("covidquex", "CovidQUExMSBench", 1, (1864, 466, 583), aliases=("infection",)),
    Flag("cystoidfluid", "CystoFluidMSBench", 3, (703, 101, 202)),
    Flag("isic2016", "Isic2016MSBench", 3, (810, 90, 379)),
    Flag("polypgen", "PolypGenMSBench", 3, (984, 140, 288)),
    Flag("promise12", "Promise12MSBench", 1, (1031, 147, 295)),
    Flag("robotool", "RoboToolMSBench", 3, (350, 50, 100)),
    Flag("uwaterlooskincancer", "UWSkinCancerMSBench", 3, (143, 19, 44)),
    Flag("ultrasoundnerve", "UltrasoundNerveMSBench", 1, (1651, 223, 449)),
    Flag("usforkidney", "USforKidneyMSBench", 1, (3210, 458, 918)),
    Flag("yeaz", "YeazMSBench", 1, (360, 96, 251)),
    Flag("bkai-igh", "BkaiIghMSBench", 3, (700, 100, 200),
         classes=("background", "neoplastic polyps", "non-neoplastic polyps")),
    Flag("m2caiseg", "M2caiSegMSBench", 3, (245, 307, 62),
         classes=("unknown", "grasper", "bipolar", "hook", "scissors", "clipper", "irrigator", "specimen-bag",
                  "trocars", "clip", "liver", "gall-bladder", "fat", "organ", "artery", "intestine", "bile",
                  "blood", "black")),
    Flag("abdomenus", "AbdomenUSMSBench", 1, (569, 64, 293),
         classes=("background", "liver", "kidney", "pancreas", "vessels", "adrenals", "gallbladder", "bones",
                  "spleen")),
    Flag("fhpsaop", "FHPsAOPMSBench", 1, (2800, 400, 800), classes=("background", "pubic symphysis", "fetal head")),
    Flag("mosmedplus", "MosMedPlusMSBench", 3, (1910, 272, 547), aliases=("infection",)),
)
BY_NAME = {flag.name: flag for flag in FLAGS}
