"""The generic export path: a tiny randomly initialised GPT-2 (built here, nothing downloaded) through
``python -m maas_modelbuild.export_causal_lm``, served by the runtime's generation engine, against PyTorch."""

from __future__ import annotations

import json

import pytest

from maas_modelbuild import causal_lm, export_causal_lm

VOCAB = 300


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=0,
                        eos_token_id=1)
    GPT2LMHeadModel(config).save_pretrained(folder)
    vocab = {"<s>": 0, "</s>": 1, **{ch: i + 2 for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>", "bos_token": "<s>"}))
    return folder


@pytest.mark.parametrize("quantize", ["none", "int8"])
async def test_gpt2_exports_and_decodes_like_pytorch(tiny_gpt2, tmp_path, quantize):
    from maas_runtime.executor import BoundedExecutor
    from maas_runtime.generation import DecoderModel, GenerationEngine, SamplingParams
    from maas_runtime.onnx_model import OnnxModel
    from maas_runtime.settings import ModelSettings

    out = tmp_path / "models" / "tiny-gpt2" / "1"
    assert export_causal_lm.main([str(tiny_gpt2), str(out), "--quantize", quantize]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["name"] == "tiny-gpt2" and manifest["architecture"] == "GPT2LMHeadModel"
    assert manifest["kv_cache"] == {"layers": 2, "heads": 2, "head_dim": 16, "past": causal_lm.PAST,
                                    "present": causal_lm.PRESENT}
    assert manifest["eos_token_ids"] == [1] and manifest["context_length"] == 64
    assert manifest["export_check"]["cached_padded_batch_max_abs_logit_diff"] < 1e-3
    if quantize == "int8":
        assert manifest["quantization"]["bits"] == 8 and manifest["quantization"]["quantized_matmuls"] == 9

    model = causal_lm.load_model(tiny_gpt2)
    executor = BoundedExecutor(1)
    onnx_model = OnnxModel.load(tmp_path / "models", "tiny-gpt2", ModelSettings(providers="cpu"), executor)
    engine = GenerationEngine(DecoderModel(onnx_model), executor)
    prompts = [[5, 6, 7, 8], [40, 41], [100, 90, 80, 70, 60, 50, 40]]
    gens = [engine.generate(p, SamplingParams(max_new_tokens=12, temperature=0.0)) for p in prompts]
    for prompt, gen in zip(prompts, gens):  # decoded together, left-padded in one batch
        served = [e.token_id async for e in gen]
        expected = causal_lm.torch_greedy(model, prompt, 12, [])
        if quantize == "none":
            assert served == expected
        else:
            assert causal_lm.common_prefix(served, expected) >= 4
    await engine.close()
    executor.shutdown()
