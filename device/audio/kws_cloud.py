"""The cloud's keyword spotter (``kws-embed``): it hears the earbuds' audio, not their MFCCs.

Two experts, combined as a weighted product (sum of log-probabilities):

* a small convolutional head over Google's speech embedding (``audio/embedding.py``), a front end
  trained on large amounts of real speech, so a head trained on our two synthesis families hears
  a third one (flite) better than any MFCC model we trained;
* the DS-CNN ensemble ``kws-large`` on the MFCCs of the same clip, the stronger expert in noise.

The weight is chosen on the training families' test banks, never on the held-out family
(``scripts/train_kws.py --cloud-embedding``). A caller that only has MFCC windows (an MCU that
computes them) gets the DS-CNN ensemble alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from edgesplit.device.audio.embedding import EMBEDDING_DIM, WINDOWS, SpeechEmbedder
from edgesplit.device.audio.features import CLIP_SAMPLES, FRAMES, MFCC_COEFFS, mfcc
from edgesplit.device.errors import ModelInputError


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class CloudKeywordSpotter:
    """``log_probs_audio`` (N, 16000) float audio -> (N, 12); ``log_probs_mfcc`` (N, 49, 10)."""

    def __init__(
        self, head: Path, mfcc_model: Path, embedding_weight: float, threads: int = 1
    ) -> None:
        import onnxruntime as ort

        if not 0.0 <= embedding_weight <= 1.0:
            raise ValueError(f"embedding_weight={embedding_weight}: expected 0..1")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        cpu = ["CPUExecutionProvider"]
        self.embedder = SpeechEmbedder(threads)
        self.head = ort.InferenceSession(str(head), opts, providers=cpu)
        self.mfcc_model = ort.InferenceSession(str(mfcc_model), opts, providers=cpu)
        self.weight = float(embedding_weight)

    def embedding_log_probs(self, audio: np.ndarray) -> np.ndarray:
        emb = self.embedder(audio)
        return log_softmax(self.head.run(None, {"embedding": emb})[0])

    def embedding_log_probs_of(self, embeddings: np.ndarray) -> np.ndarray:
        """The head alone on precomputed embeddings (N, WINDOWS, 96) (training, evaluation)."""
        if embeddings.shape[1:] != (WINDOWS, EMBEDDING_DIM):
            raise ModelInputError(f"embeddings must be (N, {WINDOWS}, 96), got {embeddings.shape}")
        return log_softmax(self.head.run(None, {"embedding": embeddings.astype(np.float32)})[0])

    def log_probs_mfcc(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, np.float32).reshape(-1, FRAMES, MFCC_COEFFS)
        return log_softmax(self.mfcc_model.run(None, {"mfcc": x[:, None]})[0])

    def log_probs_audio(self, audio: np.ndarray) -> np.ndarray:
        x = np.asarray(audio, np.float32)
        if x.ndim != 2 or x.shape[1] != CLIP_SAMPLES:
            raise ModelInputError(f"audio must be (N, {CLIP_SAMPLES}) samples, got {x.shape}")
        feats = np.stack([mfcc(clip) for clip in x])
        lp = self.log_probs_mfcc(feats)
        if self.weight > 0.0:  # a weighted product of the experts, renormalised
            lp = log_softmax(self.weight * self.embedding_log_probs(x) + (1.0 - self.weight) * lp)
        return lp
