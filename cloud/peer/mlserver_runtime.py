"""A minimal MLServer custom runtime serving an ONNX model with ONNX Runtime, for the benchmark.

Runs inside the peer virtualenv made by scripts/setup_peer.sh (MLServer pins its own FastAPI, so it
cannot share .venv). Same threads and provider as our server, no batching.
"""

import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxRuntimeModel(MLModel):
    async def load(self) -> bool:
        params = self.settings.parameters
        opts = ort.SessionOptions()
        extra = (params.extra or {}) if params else {}
        opts.intra_op_num_threads = int(extra.get("intra_op_threads", 1))
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(params.uri, opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        outs = self.session.run(self.output_names, feeds)
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                NumpyCodec.encode_output(n, o) for n, o in zip(self.output_names, outs, strict=True)
            ],
        )
