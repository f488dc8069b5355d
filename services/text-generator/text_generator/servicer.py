"""Protobuf <-> domain types for maas.textgen.v1.TextGenerator, and nothing else."""

from __future__ import annotations

from typing import AsyncIterator

import grpc

from maas.common.v1 import common_pb2
from maas.textgen.v1 import textgen_pb2, textgen_pb2_grpc
from maas_runtime.generation import FinishReason
from maas_runtime.rpc import deadline, model_info
from text_generator.pipeline import GenerationRequest, TextGenPipeline

_FINISH = {FinishReason.LENGTH: textgen_pb2.FINISH_REASON_LENGTH, FinishReason.STOP: textgen_pb2.FINISH_REASON_STOP,
           FinishReason.EOS: textgen_pb2.FINISH_REASON_EOS}


def to_request(msg: textgen_pb2.GenerateRequest | textgen_pb2.GenerateStreamRequest) -> GenerationRequest:
    return GenerationRequest(
        prompt=msg.prompt,
        messages=tuple((m.role, m.content) for m in msg.messages),
        max_new_tokens=msg.max_new_tokens if msg.HasField("max_new_tokens") else None,
        temperature=msg.temperature if msg.HasField("temperature") else None,
        top_p=msg.top_p if msg.HasField("top_p") else None,
        top_k=msg.top_k,
        repetition_penalty=msg.repetition_penalty if msg.HasField("repetition_penalty") else None,
        seed=msg.seed if msg.HasField("seed") else None,
        stop=tuple(msg.stop),
        logprobs=msg.logprobs,
    )


def tokens_pb(tokens) -> list[textgen_pb2.GeneratedToken]:  # noqa: ANN001
    return [textgen_pb2.GeneratedToken(id=t, logprob=lp) for t, lp in tokens]


class TextGeneratorServicer(textgen_pb2_grpc.TextGeneratorServicer):
    def __init__(self, pipeline: TextGenPipeline) -> None:
        self.pipeline = pipeline

    async def Generate(self, request: textgen_pb2.GenerateRequest,
                       context: grpc.aio.ServicerContext) -> textgen_pb2.GenerateResponse:
        r = await self.pipeline.generate(to_request(request), deadline(context))
        return textgen_pb2.GenerateResponse(
            text=r.text, finish_reason=_FINISH[r.finish_reason], prompt_tokens=r.prompt_tokens,
            completion_tokens=r.completion_tokens, seed=r.seed, stop_sequence=r.stop_sequence,
            tokens=tokens_pb(r.tokens), model=model_info(self.pipeline.model))

    async def GenerateStream(self, request: textgen_pb2.GenerateStreamRequest,
                             context: grpc.aio.ServicerContext) -> AsyncIterator[textgen_pb2.GenerateStreamResponse]:
        stream = self.pipeline.stream(to_request(request), deadline(context))
        try:
            async for d in stream:
                event = textgen_pb2.GenerateStreamResponse(text=d.text, tokens=tokens_pb(d.tokens))
                if d.seed is not None:
                    event.seed = d.seed
                    event.model.CopyFrom(model_info(self.pipeline.model))
                if d.finish_reason is not None:
                    event.finish_reason = _FINISH[d.finish_reason]
                    event.prompt_tokens, event.completion_tokens = d.prompt_tokens, d.completion_tokens
                    event.stop_sequence = d.stop_sequence
                yield event
        finally:
            await stream.aclose()  # a cancelled call takes its request out of the batch at once

    async def CountTokens(self, request: textgen_pb2.CountTokensRequest,
                          context: grpc.aio.ServicerContext) -> textgen_pb2.CountTokensResponse:
        count = self.pipeline.count_tokens(request.text, [(m.role, m.content) for m in request.messages])
        return textgen_pb2.CountTokensResponse(token_count=count, context_length=self.pipeline.context_length,
                                               model=model_info(self.pipeline.model))

    async def ScoreText(self, request: textgen_pb2.ScoreTextRequest,
                        context: grpc.aio.ServicerContext) -> textgen_pb2.ScoreTextResponse:
        r = await self.pipeline.score(request.text, deadline(context))
        tokens = []
        for t in r.tokens:
            token = textgen_pb2.ScoredToken(id=t.id, span=common_pb2.TextSpan(start=t.start, end=t.end))
            if t.logprob is not None:
                token.logprob = t.logprob
            tokens.append(token)
        return textgen_pb2.ScoreTextResponse(tokens=tokens, perplexity=r.perplexity, total_logprob=r.total_logprob,
                                             scored_tokens=r.scored_tokens, model=model_info(self.pipeline.model))
