"""The cloud's keyword spotter kws-embed on real parts: ORT sessions on the openwakeword wheel's
speech-embedding models, the committed head, a real server on loopback, requests from the earbuds
task through the real router. Accuracy floors out of family are in test_kws_lofo.py (``full``)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from edgesplit.cloud.models import resolve_source
from edgesplit.cloud.repository import DEFAULT_REPOSITORY, Repository
from edgesplit.cloud.serve import ServerThread
from edgesplit.device.audio.embedding import EMBEDDING_DIM, WINDOWS, SpeechEmbedder, model_files
from edgesplit.device.audio.features import CLIP_SAMPLES, mfcc
from edgesplit.device.audio.kws_cloud import CloudKeywordSpotter
from edgesplit.device.cloud_client import CloudClient
from edgesplit.device.oip_client import OipClient, OipClientError
from edgesplit.device.policy import LinkEstimator, PolicyConfig, RequestCosts
from edgesplit.device.router import Router

CONFIG = DEFAULT_REPOSITORY / "kws-embed" / "config.yaml"
COSTS = RequestCosts(deadline_ms=1e9, request_bytes=0, response_bytes=0, device_ms=0, cloud_ms=0)


def _spotter() -> CloudKeywordSpotter:
    """kws-embed's two experts and weight, as its config.yaml names them."""
    params = yaml.safe_load(CONFIG.read_text())["parameters"]
    here = DEFAULT_REPOSITORY / "kws-embed"
    return CloudKeywordSpotter(
        resolve_source(here, params["head"]),
        resolve_source(here, params["mfcc_model"]),
        float(params["embedding_weight"]),
    )


@pytest.fixture(scope="module")
def server():
    with ServerThread(Repository(DEFAULT_REPOSITORY, ["kws-embed", "kws-embed-opus"])) as srv:
        yield srv


@pytest.fixture(scope="module")
def clips(kws_workload) -> list[np.ndarray]:
    """Two VAD-cut 1 s windows of synthesised speech, as the earbuds hear them."""
    from edgesplit.streams import earbuds_items

    return [i.x for i in earbuds_items(2, seed=5, features="audio")]


def test_speech_embedding_runs_the_wheels_models():
    mel, emb = model_files()
    assert mel.name == "melspectrogram.onnx" and "openwakeword" in str(emb)
    rng = np.random.default_rng(0)
    t = np.arange(CLIP_SAMPLES) / 16_000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t) * (t > 0.3) * (t < 0.7)).astype(np.float32)
    noise = (0.05 * rng.standard_normal(CLIP_SAMPLES)).astype(np.float32)
    embedder = SpeechEmbedder()
    out = embedder(np.stack([tone, noise, tone]))
    assert out.shape == (3, WINDOWS, EMBEDDING_DIM) and np.isfinite(out).all()
    np.testing.assert_array_equal(out[0], out[2])  # fixed dither: same clip, same features
    assert np.abs(out[0] - out[1]).max() > 0.1  # a tone is not noise


def test_earbuds_task_sends_audio_and_the_cloud_hears_it(server, clips, kws_workload):
    from edgesplit.device.audio import opus
    from edgesplit.device.tasks import KWS_CLOUD_MODEL, KWS_CLOUD_MODEL_OPUS, kws_task

    assert KWS_CLOUD_MODEL == "kws-embed" and opus.available()  # bootstrap installs libopus0
    task = kws_task()
    assert task.cloud_model == KWS_CLOUD_MODEL_OPUS
    client = CloudClient(server.url, timeout_s=30, retries=0)
    router = Router(PolicyConfig("cloud-only"), client, LinkEstimator(100, 100, 2))
    spotter = _spotter()
    labels = task.parse_cloud  # label order of the device model's card
    for clip in clips:
        ans = router.handle(task, clip, COSTS)
        assert (ans.route, ans.degraded) == ("cloud", False), ans.error
        # The 1 s clip went up as Opus: a few KB, not 64 000 bytes of FP32.
        assert 1_000 < ans.bytes_up < 8_000, ans.bytes_up
        heard = opus.decode_clip(opus.encode(clip), CLIP_SAMPLES)
        want = labels({"logits": spotter.log_probs_audio(heard[None])})
        assert ans.label == want[0] and ans.confidence == pytest.approx(want[1], abs=1e-4)
        # ... and the codec does not change what the cloud hears of a clean clip.
        assert ans.label == labels({"logits": spotter.log_probs_audio(clip[None])})[0]
        # An MCU's MFCC window (no audio): 490 values go up, the MFCC expert answers.
        window = mfcc(clip)
        by_mfcc = router.handle(task, window, COSTS)
        assert by_mfcc.route == "cloud" and by_mfcc.bytes_up < 4 * CLIP_SAMPLES // 8
        assert by_mfcc.label == labels({"logits": spotter.log_probs_mfcc(window[None])})[0]
        # the device route still answers from the clip's MFCCs
        local = task.local(clip)
        assert local == task.local(window)


def test_opus_stream_errors_are_400s_and_the_model_keeps_serving(server, clips):
    from edgesplit.device.audio import opus

    c = OipClient(server.url, timeout_s=30)
    good = np.frombuffer(opus.encode(clips[0]), np.uint8).reshape(1, -1)
    for bad, why in (
        (good[:, :-5], "bad packet length"),  # truncated packet
        (np.full((1, 40), 255, np.uint8), "bad packet length"),  # lengths past the end
        (np.zeros((1, 2), np.uint8), "3.."),  # too short to hold a packet
    ):
        with pytest.raises(OipClientError, match="HTTP 400") as err:
            c.infer("kws-embed-opus", {"opus": bad})
        assert why in str(err.value)
    assert c.infer("kws-embed-opus", {"opus": good})["logits"].shape == (1, 12)


def test_kws_embed_batches_and_rejects_bad_clips(server, clips):
    c = OipClient(server.url)
    batch = np.stack(clips)
    out = c.infer("kws-embed", {"clip": batch})["logits"]
    assert out.shape == (2, 12) and np.allclose(np.exp(out).sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(out, _spotter().log_probs_audio(batch), atol=1e-4)
    bad = [
        ({"clip": batch.astype(np.float64)}, "datatype FP64"),
        ({"clip": batch[:, :8000]}, "must be FP32 [N, 16000]"),
        ({"clip": np.full((1, CLIP_SAMPLES), np.nan, np.float32)}, "NaN"),
        ({"audio": batch}, "takes inputs ['clip']"),
    ]
    for inputs, message in bad:
        with pytest.raises(OipClientError, match="HTTP 400") as err:
            c.infer("kws-embed", inputs)
        assert message in str(err.value)
    assert c.infer("kws-embed", {"clip": batch[:1]})["logits"].shape == (1, 12)  # still serving


def test_kws_embed_card_matches_what_is_served():
    """The committed card describes the served model: same weight, every condition reported,
    the held-out family never used to choose, the front end's licence stated."""
    import json

    card = json.loads((DEFAULT_REPOSITORY / "kws-embed" / "model_card.json").read_text())
    params = yaml.safe_load(CONFIG.read_text())["parameters"]
    assert card["embedding_weight"] == params["embedding_weight"]
    from edgesplit.device.audio.kws_data import CONDITIONS, HELD_OUT_FAMILY

    assert card["held_out_family"] == HELD_OUT_FAMILY and set(card["out_of_family"]) == set(
        CONDITIONS
    )
    assert "not used to choose" in card["selection"] and "CC BY-NC-SA" in card["licence"]
    assert card["rebuild"].startswith("python scripts/train_kws.py --cloud-embedding")
