"""The served float32 model against PyTorch ``generate`` on the same weights (the GGUF, loaded by transformers):
greedy output token for token, with the prompts decoded together in one batch."""

import asyncio

import pytest

from maas.textgen.v1 import textgen_pb2 as pb
from maas.textgen.v1 import textgen_pb2_grpc

PROMPTS = [
    [("user", "Write a haiku about rain on a tin roof.")],
    [("system", "You are a songwriting assistant."), ("user", "Suggest a title for a slow song about leaving home.")],
    [("user", "Explain what a chord progression is, in two sentences.")],
]
PLAIN = "The history of the piano begins in Italy, where"
TOKENS = 32


@pytest.fixture(scope="module")
def torch_model():
    import torch
    from transformers import AutoModelForCausalLM

    from maas_modelbuild.recipes.smollm2 import GGUF_FILE, gguf_dir

    torch.set_num_threads(2)
    return AutoModelForCausalLM.from_pretrained(str(gguf_dir()), gguf_file=GGUF_FILE, dtype=torch.float32).eval()


def torch_greedy(model, ids: list[int], eos: list[int]) -> list[int]:
    import torch

    x = torch.tensor([ids])
    with torch.no_grad():
        out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=TOKENS, do_sample=False,
                             eos_token_id=eos, pad_token_id=eos[0])
    return out[0, len(ids):].tolist()


async def test_greedy_output_matches_pytorch_token_for_token(channel, textgen_server, torch_model):
    pipeline = textgen_server[0].pipeline
    stub = textgen_pb2_grpc.TextGeneratorStub(channel)
    requests = [pb.GenerateRequest(messages=[pb.ChatMessage(role=r, content=c) for r, c in m], temperature=0,
                                   max_new_tokens=TOKENS, logprobs=True) for m in PROMPTS]
    requests.append(pb.GenerateRequest(prompt=PLAIN, temperature=0, max_new_tokens=TOKENS, logprobs=True))
    served = await asyncio.gather(*(stub.Generate(r) for r in requests))  # decoded together, continuous batching
    eos = list(pipeline.eos_token_ids)
    for request, answer in zip(requests, served):
        ids, _ = pipeline.prepare(pipeline_request(request))
        expected = torch_greedy(torch_model, ids, eos)
        got = [t.id for t in answer.tokens]
        assert got == expected, f"{request.prompt or request.messages[-1].content!r}: diverged at token " \
                                f"{next(i for i, (a, b) in enumerate(zip(got + [-1], expected + [-2])) if a != b)}"
        assert answer.text == pipeline.tokenizer.decode([t for t in got if t not in eos])


def pipeline_request(request):
    from text_generator.servicer import to_request

    return to_request(request)
