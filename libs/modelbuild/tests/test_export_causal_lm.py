"""The export path of any local causal LM: a tiny randomly initialised GPT-2 (the Hugging Face forward as it is)
and a tiny Llama with grouped KV heads (the split-attention forward, present = new positions), built here, nothing
downloaded, through ``python -m maas_modelbuild.export_causal_lm``, served by the runtime's generation engine,
against PyTorch."""

from __future__ import annotations

import json

import pytest

from maas_modelbuild import causal_lm, export_causal_lm

VOCAB = 300


ARCHITECTURES = {  # name -> (class, kv_cache of the manifest, weight matrices: 4 or 7 a layer + output head)
    "gpt2": ("GPT2LMHeadModel", {"layers": 2, "heads": 2, "head_dim": 16, "present_positions": "all"}, 9),
    "llama": ("LlamaForCausalLM", {"layers": 2, "heads": 2, "head_dim": 8, "present_positions": "new"}, 15),
}


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def tiny_lm(tmp_path_factory, request):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp(f"tiny-{request.param}")
    torch.manual_seed(0)
    if request.param == "gpt2":
        config = GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=0,
                            eos_token_id=1)
        GPT2LMHeadModel(config).save_pretrained(folder)
    else:  # grouped KV heads (4 query heads, 2 KV heads), tied embeddings, SmolLM2's rope base
        config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                             rope_theta=100000.0, tie_word_embeddings=True, bos_token_id=0, eos_token_id=1)
        LlamaForCausalLM(config).save_pretrained(folder)
    vocab = {"<s>": 0, "</s>": 1, **{ch: i + 2 for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>", "bos_token": "<s>"}))
    return request.param, folder


@pytest.mark.parametrize("quantize", ["none", "int8"])
async def test_exports_and_decodes_like_pytorch(tiny_lm, tmp_path, quantize):
    from maas_runtime.executor import BoundedExecutor
    from maas_runtime.generation import DecoderModel, GenerationEngine, SamplingParams
    from maas_runtime.onnx_model import OnnxModel
    from maas_runtime.settings import ModelSettings

    arch, folder = tiny_lm
    architecture, kv_cache, matmuls = ARCHITECTURES[arch]
    name = f"tiny-{arch}"
    out = tmp_path / "models" / name / "1"
    assert export_causal_lm.main([str(folder), str(out), "--quantize", quantize]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["name"] == name and manifest["architecture"] == architecture
    assert manifest["kv_cache"] == {**kv_cache, "past": causal_lm.PAST, "present": causal_lm.PRESENT}
    assert manifest["eos_token_ids"] == [1] and manifest["context_length"] == 64
    assert max(manifest["export_check"].values()) < 1e-3
    if quantize == "int8":
        assert manifest["quantization"]["bits"] == 8 and manifest["quantization"]["quantized_matmuls"] == matmuls

    model = causal_lm.load_model(folder)
    executor = BoundedExecutor(1)
    onnx_model = OnnxModel.load(tmp_path / "models", name, ModelSettings(providers="cpu"), executor)
    engine = GenerationEngine(DecoderModel(onnx_model), executor)
    prompts = [[5, 6, 7, 8], [40, 41], [100, 90, 80, 70, 60, 50, 40]]
    # 40 tokens: past the spare columns of the cache buffer (it grows once on the way)
    gens = [engine.generate(p, SamplingParams(max_new_tokens=40, temperature=0.0)) for p in prompts]
    for prompt, gen in zip(prompts, gens):  # decoded together, left-padded in one batch
        served = [e.token_id async for e in gen]
        expected = causal_lm.torch_greedy(model, prompt, 40, [])
        if quantize == "none":
            assert served == expected
        else:
            assert causal_lm.common_prefix(served, expected) >= 4
    await engine.close()
    executor.shutdown()
