"""Token generation on a decoder-only ONNX model with a KV cache, shared by every generating service.

``DecoderModel`` wraps an ``OnnxModel`` whose graph follows the KV-cache contract (see ``decoder``);
``GenerationEngine`` runs continuous batching over it; ``SamplingParams`` / ``Sampler`` choose tokens.
Nothing here knows about text: the text-generator and the music generator each bring their own vocabulary.
"""

from maas_runtime.generation.decoder import DecoderModel, KVCache
from maas_runtime.generation.engine import (FinishReason, Generation, GenerationEngine, StopCallback, TokenEvent,
                                            TokenPositions)
from maas_runtime.generation.sampling import LogitsProcessor, Sampler, SamplingParams, log_softmax

__all__ = ["DecoderModel", "KVCache", "FinishReason", "Generation", "GenerationEngine", "StopCallback",
           "TokenEvent", "TokenPositions", "LogitsProcessor", "Sampler", "SamplingParams", "log_softmax"]
