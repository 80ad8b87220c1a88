"""COVID-QU-Ex's published image counts by split and class folder, for `segbench data check covid-qu-ex`.

The Infection Segmentation Data of Kaggle's COVID-QU-Ex (anasmohammedtahir/covidqu; Tahir et al., 2021):
5,826 images, 2,913 COVID-19, 1,457 Non-COVID and 1,456 Normal, split 3,728 train / 932 val / 1,166 test.
The counts per split and class were taken from the public snapshot of that set,
github.com/KevenDuan/Fine-grained-recognition-of-medical-images-based-on-dynamic-focus-search at commit
8fa1b68 (its dataset/ folder; every class folder holds as many lung and infection masks as images).
"""

INFECTION_SET = {
    "train": {"COVID-19": 1864, "Non-COVID": 932, "Normal": 932},
    "val": {"COVID-19": 466, "Non-COVID": 233, "Normal": 233},
    "test": {"COVID-19": 583, "Non-COVID": 292, "Normal": 291},
}
# The lung task as `segbench data layout covid-qu-ex` lays it out from the infection set (its images with
# their lung masks). A full Kaggle download's Lung Segmentation Data (33,920 images) is larger.
EXPECTED = {"infection": INFECTION_SET, "lung": INFECTION_SET}
