"""``kws-embed``: the cloud's keyword spotter, served as an edgesplit pipeline.

One input, ``clip`` (FP32 [N, W]): the earbuds send the 1 s they heard (W = 16 000 samples at
16 kHz, -1..1) and the pipeline runs Google's speech embedding with a trained head and the DS-CNN
ensemble on the clip's MFCCs (``device/audio/kws_cloud.py``). An earbud whose MCU computes MFCCs
and keeps no audio sends its window (W = 490 = 49x10) and gets the DS-CNN ensemble. One input
rather than two, because the server requires every declared input of a model. Output: ``logits``
(FP32 [N, 12], log-probabilities in the device model's label order).

With ``parameters.codec: opus`` (``kws-embed-opus``) the one input is ``opus`` (UINT8 [1, L]):
the clip as Opus packets (``device/audio/opus.py``, ~2 KB a second instead of 64 KB of FP32),
which is what earbuds can afford to send over BLE; it is decoded here and heard the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from edgesplit.cloud.config import ModelConfig
from edgesplit.cloud.errors import ModelConfigError, OipError
from edgesplit.cloud.protocol import TensorMetadata
from edgesplit.device.audio.features import CLIP_SAMPLES, FRAMES, MFCC_COEFFS

MAX_CLIPS = 64  # per request
MAX_OPUS_BYTES = 16_000  # 1 s at 128 kbit/s, far above the earbuds' 16 kbit/s
MFCC_VALUES = FRAMES * MFCC_COEFFS  # 490
WIDTHS = (CLIP_SAMPLES, MFCC_VALUES)


class KwsPipelineModel:
    platform = "edgesplit-pipeline"

    def __init__(self, cfg: ModelConfig, version: str) -> None:
        from edgesplit.cloud.models import resolve_source
        from edgesplit.device.audio.kws_cloud import CloudKeywordSpotter
        from edgesplit.device.errors import ModelFileError

        self.cfg, self.version = cfg, version
        params = cfg.parameters
        for key in ("head", "mfcc_model", "embedding_weight"):
            if key not in params:
                raise ModelConfigError(f"{cfg.name}: parameters.{key} is required")
        weight = params["embedding_weight"]
        if not isinstance(weight, int | float) or not 0.0 <= float(weight) <= 1.0:
            raise ModelConfigError(
                f"{cfg.name}: parameters.embedding_weight = {weight!r}: expected a number 0..1"
            )
        here = Path(".")
        try:
            self.spotter = CloudKeywordSpotter(
                resolve_source(here, str(params["head"])),
                resolve_source(here, str(params["mfcc_model"])),
                float(weight),
                cfg.intra_op_threads,
            )
        except ModelFileError as exc:  # the openwakeword wheel is missing
            raise ModelConfigError(f"{cfg.name}: {exc}") from None
        self.providers = ["CPUExecutionProvider"]
        self.codec = str(params.get("codec", "pcm"))
        if self.codec not in ("pcm", "opus"):
            raise ModelConfigError(
                f"{cfg.name}: parameters.codec = {self.codec!r}: expected pcm or opus"
            )
        if self.codec == "opus":
            self.inputs = [TensorMetadata(name="opus", datatype="UINT8", shape=[1, -1])]
        else:
            self.inputs = [TensorMetadata(name="clip", datatype="FP32", shape=[-1, -1])]
        self.outputs = [TensorMetadata(name="logits", datatype="FP32", shape=[-1, 12])]

    def validate(self, inputs: dict[str, np.ndarray]) -> int:
        if self.codec == "opus":
            stream = inputs.get("opus")
            if set(inputs) != {"opus"} or stream is None:
                raise OipError(f"model '{self.cfg.name}' takes one input 'opus' (UINT8 [1, L])")
            if stream.dtype != np.uint8 or stream.shape[:1] != (1,) or stream.ndim != 2:
                raise OipError(
                    f"input 'opus' must be UINT8 [1, L] (one clip's Opus packets); got "
                    f"{stream.dtype} {list(stream.shape)}"
                )
            if not 3 <= stream.shape[1] <= MAX_OPUS_BYTES:
                raise OipError(f"input 'opus' has {stream.shape[1]} bytes; 3..{MAX_OPUS_BYTES}")
            return 1
        clip = inputs.get("clip")
        if set(inputs) != {"clip"} or clip is None:
            raise OipError(f"model '{self.cfg.name}' takes one input 'clip' (FP32 [N, W])")
        if clip.dtype != np.float32 or clip.ndim != 2 or clip.shape[1] not in WIDTHS:
            raise OipError(
                f"input 'clip' must be FP32 [N, {CLIP_SAMPLES}] (1 s of 16 kHz audio, -1..1) or "
                f"[N, {MFCC_VALUES}] ({FRAMES}x{MFCC_COEFFS} MFCC); got {clip.dtype} "
                f"{list(clip.shape)}"
            )
        if not 1 <= clip.shape[0] <= MAX_CLIPS:
            raise OipError(f"input 'clip' has {clip.shape[0]} clips; 1..{MAX_CLIPS} per request")
        if not np.isfinite(clip).all():
            raise OipError("input 'clip' has NaN or infinite values")
        return 1

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.codec == "opus":
            from edgesplit.device.audio import opus
            from edgesplit.device.errors import InputError

            try:
                clip = opus.decode_clip(inputs["opus"].tobytes(), CLIP_SAMPLES)
            except InputError as exc:
                raise OipError(f"input 'opus': {exc}") from None
            return {"logits": self.spotter.log_probs_audio(clip[None]).astype(np.float32)}
        clip = inputs["clip"]
        if clip.shape[1] == CLIP_SAMPLES:
            lp = self.spotter.log_probs_audio(np.clip(clip, -1.0, 1.0))
        else:
            lp = self.spotter.log_probs_mfcc(clip.reshape(-1, FRAMES, MFCC_COEFFS))
        return {"logits": lp.astype(np.float32)}
