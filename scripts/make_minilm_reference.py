"""Write tests/data/minilm_reference.json: all-MiniLM-L6-v2 embeddings from the reference stack
(transformers' BertModel + mean pooling + L2 norm, as sentence-transformers defines the model), so
the tests can check our torch-free ONNX build against it without torch in CI.

Needs the train extra plus transformers: pip install -e ".[device,train]" transformers
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from edgesplit.device.text.minilm_onnx import minilm_dir
from edgesplit.device.text.tokenizer import TextTokenizer
from transformers import BertModel

SENTENCES = [
    "order a coffee",
    "translate this sign into Spanish",
    "what am I looking at?",
    "Remind me to call the dentist tomorrow morning at half past eight, please.",
    "Ünïcödé text — with punctuation!",
]


def main() -> None:
    batch = TextTokenizer().encode(SENTENCES)
    model = BertModel.from_pretrained(str(minilm_dir())).eval()
    with torch.no_grad():
        ids, mask = torch.tensor(batch.input_ids), torch.tensor(batch.attention_mask)
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask[..., None].float()
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        emb = torch.nn.functional.normalize(pooled, dim=1).numpy()
    out = Path(__file__).resolve().parents[1] / "tests" / "data" / "minilm_reference.json"
    out.write_text(
        json.dumps(
            {
                "source": "transformers BertModel + mean pooling + L2 normalisation",
                "sentences": SENTENCES,
                "embeddings": [[round(float(v), 7) for v in row] for row in emb],
            }
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
