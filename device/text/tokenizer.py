"""WordPiece tokenisation with the HuggingFace ``tokenizers`` package (no transformers needed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from edgesplit.device.text.minilm_onnx import minilm_dir
from tokenizers import Tokenizer

MAX_TOKENS = 128  # the device's cap; the model was trained with sequences up to 256


@dataclass(frozen=True)
class Batch:
    input_ids: np.ndarray  # (N, T) int64
    attention_mask: np.ndarray  # (N, T) int64
    truncated: list[bool]

    def feeds(self) -> dict[str, np.ndarray]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


class TextTokenizer:
    def __init__(self, path: Path | None = None, max_tokens: int = MAX_TOKENS) -> None:
        if not 8 <= max_tokens <= 512:
            raise ValueError(f"max_tokens={max_tokens}: expected 8..512 tokens")
        self.tok = Tokenizer.from_file(str(path or minilm_dir() / "tokenizer.json"))
        self.tok.enable_truncation(max_length=max_tokens)
        self.max_tokens = max_tokens

    @staticmethod
    def clean(text: str | bytes) -> str:
        """UTF-8 text, stripped; raises ValueError for empty or undecodable input."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"utterance is not valid UTF-8 (byte 0x{text[exc.start]:02x} at offset "
                    f"{exc.start}); send UTF-8 text"
                ) from None
        if not isinstance(text, str):
            raise ValueError(f"utterance must be str or UTF-8 bytes, got {type(text).__name__}")
        text = text.strip()
        if not text:
            raise ValueError("utterance is empty")
        return text

    def encode(self, texts: Sequence[str | bytes], pad_to: int | None = None) -> Batch:
        if not texts:
            raise ValueError("no utterances to encode")
        encs = self.tok.encode_batch([self.clean(t) for t in texts])
        width = pad_to or max(len(e.ids) for e in encs)
        if pad_to is not None and not 1 <= pad_to <= self.max_tokens:
            raise ValueError(f"pad_to={pad_to}: expected 1..{self.max_tokens} tokens")
        ids = np.zeros((len(encs), width), np.int64)
        mask = np.zeros((len(encs), width), np.int64)
        for i, e in enumerate(encs):
            n = min(len(e.ids), width)
            ids[i, :n], mask[i, :n] = e.ids[:n], e.attention_mask[:n]
        return Batch(ids, mask, [bool(e.overflowing) for e in encs])
