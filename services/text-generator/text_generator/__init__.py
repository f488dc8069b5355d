"""text-generator: maas.textgen.v1.TextGenerator, a pretrained LM on ONNX Runtime with continuous batching."""
