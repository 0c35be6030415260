import pytest

from tdrag.data.labels import DFEW_CLASSES, dfew_label_from_csv, dfew_label_to_csv


def test_dfew_order():
    assert DFEW_CLASSES == ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")


def test_csv_labels_map_to_zero_based_and_back():
    assert [dfew_label_from_csv(v) for v in range(1, 8)] == list(range(7))
    assert dfew_label_from_csv(" 3 ") == 2
    assert [dfew_label_to_csv(i) for i in range(7)] == list(range(1, 8))


@pytest.mark.parametrize("bad", [0, 8, -1, "x", "2.5"])
def test_labels_outside_1_to_7_are_refused(bad):
    with pytest.raises(ValueError):
        dfew_label_from_csv(bad)
