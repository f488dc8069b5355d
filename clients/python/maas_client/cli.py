"""``maas``: the suite from the command line, through the gateway.

    maas sentiment "I love this record!" "What a dull film"
    maas classify "slow sad piano at 3am"                     # built-in moods and genres
    maas classify "The striker scored twice" --labels sports,politics
    maas embed "calm piano for studying"
    maas entities "Taylor Swift played Wembley Stadium in London"
    maas generate "Once upon a time" --max-new-tokens 40      # text printed as it is decoded
    maas generate --chat --system "Answer in one line." "Name a lute composer."
    maas tokens "How long is this?" ; maas score "The cat sat on the mat."
    maas styles
    maas compose --style folk --key "D minor" --bars 8 --seed 3 --midi tune.mid --wav tune.wav --png tune.png
    maas recommend --query "calm organ music for a rainy evening" -k 5
    maas recommend --user alice ; maas similar "m21:bach/bwv66.6.mxl" ; maas track "m21:bach/bwv66.6.mxl"
    maas record --user alice --like "m21:bach/bwv66.6.mxl" --rate "m21:bach/bwv10.7.mxl=4"
    maas upsert tracks.json ; maas retrain
    maas live ; maas metadata text-encoder ; maas infer sentiment 'input_ids=[[101, 2307, 102]]' ...
    maas studio "A lonely sailor sings about the sea he lost"   # the showcase: see maas_client.studio
    maas health

Options before the command: ``--target`` (default $MAAS_TARGET, else 127.0.0.1:50051), ``--api-key`` (default
$MAAS_API_KEY), ``--timeout`` (default 30 s; 300 s for generate, compose and each call of studio), ``--json`` (the
responses as JSON, one object per line; streams: one per event), TLS (``--tls``, ``--ca-file``, ``--cert-file``,
``--key-file``). Exit status: 0 done, 1 the call failed (the message says the code, the server's reason, the
fields at fault and the request id to quote), 2 usage (including files that cannot be read or written).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import grpc
from google.protobuf.json_format import MessageToDict

from maas_client import studio as studio_run
from maas_client.client import Client
from maas_client.console import Progress, bar, composition_status
from maas_client.errors import MaasError
from maas_client.services import INTERACTIONS, NlpAnalysis, TextGenerator, interaction

QUICK_TIMEOUT_S, LONG_TIMEOUT_S = 30.0, 300.0


class UsageError(Exception):
    """Bad input found on this side (a file that cannot be read, a malformed value): exit status 2."""


def _dict(response: Any) -> dict:
    return MessageToDict(response, preserving_proto_field_name=True)


def _print_json(response: Any) -> None:
    print(json.dumps(_dict(response) if not isinstance(response, dict) else response), flush=True)


def _enum(enum: Any, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()


# ---- nlp -----------------------------------------------------------------------------------------------------
def cmd_sentiment(client: Client, args: argparse.Namespace) -> None:
    response = client.nlp.analyze_sentiment(args.texts)
    if args.json:
        return _print_json(response)
    for text, r in zip(args.texts, response.results):
        label = NlpAnalysis.Sentiment.Name(r.label).removeprefix("SENTIMENT_").lower()
        print(f"{label:8s}  negative {r.negative:.2f}  neutral {r.neutral:.2f}  positive {r.positive:.2f}  {text}")


def cmd_classify(client: Client, args: argparse.Namespace) -> None:
    labels = [label.strip() for label in (args.labels or "").split(",") if label.strip()]
    groups = [g.strip() for g in (args.groups or "").split(",") if g.strip()]
    response = client.nlp.classify(args.texts, labels, multi_label=args.multi_label, template=args.template or "",
                                   groups=groups)
    if args.json:
        return _print_json(response)
    for text, result in zip(args.texts, response.results):
        print(text)
        for s in result.scores[: args.top]:
            group = f"{s.group:6s} " if s.group else ""
            print(f"  {group}{s.label:24s} {bar(s.score)} {s.score:.2f}")


def cmd_embed(client: Client, args: argparse.Namespace) -> None:
    response = client.nlp.embed(args.texts)
    if args.json:
        return _print_json(response)
    for text, e in zip(args.texts, response.embeddings):
        values = list(e.values)
        norm = math.sqrt(math.fsum(v * v for v in values))
        head = ", ".join(f"{v:+.4f}" for v in values[:6])
        print(f"dimension {response.dimension}  norm {norm:.3f}  [{head}{', ...' if len(values) > 6 else ''}]  {text}")


def cmd_entities(client: Client, args: argparse.Namespace) -> None:
    response = client.nlp.extract_entities(args.texts)
    if args.json:
        return _print_json(response)
    for text, found in zip(args.texts, response.results):
        print(text)
        if not found.entities:
            print("  (no entities)")
        for e in found.entities:
            print(f"  {e.label:10s} [{e.span.start}, {e.span.end})  {e.text}  {e.score:.2f}")


# ---- text generation -----------------------------------------------------------------------------------------
def _read_text(value: str) -> str:
    return sys.stdin.read() if value == "-" else value


def _prompt(args: argparse.Namespace) -> dict[str, Any]:
    """prompt= for a plain continuation, or messages= with --chat / --system."""
    text = _read_text(args.prompt)
    if args.chat or args.system:
        messages = ([("system", args.system)] if args.system else []) + [("user", text)]
        return {"messages": messages}
    return {"prompt": text}


def cmd_generate(client: Client, args: argparse.Namespace) -> None:
    settings = dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                    top_k=args.top_k, repetition_penalty=args.repetition_penalty, seed=args.seed,
                    stop=args.stop or (), logprobs=args.logprobs, **_prompt(args))
    if args.no_stream:
        r = client.textgen.generate(**settings)
        if args.json:
            return _print_json(r)
        print(r.text)
        _generation_note(r.finish_reason, r.prompt_tokens, r.completion_tokens, r.seed)
        return None
    seed, last = None, None
    for event in client.textgen.generate_stream(**settings):
        seed = event.seed if event.seed else seed
        last = event
        if args.json:
            _print_json(event)
        else:
            sys.stdout.write(event.text)
            sys.stdout.flush()
    if not args.json:
        sys.stdout.write("\n")
        if last is not None:
            _generation_note(last.finish_reason, last.prompt_tokens, last.completion_tokens, seed)


def _generation_note(reason: int, prompt_tokens: int, completion_tokens: int, seed: int | None) -> None:
    why = _enum(TextGenerator.FinishReason, reason, "FINISH_REASON_")
    print(f"[{why} · {prompt_tokens} prompt + {completion_tokens} generated tokens · seed {seed}]", file=sys.stderr)


def cmd_tokens(client: Client, args: argparse.Namespace) -> None:
    p = _prompt(args)
    r = client.textgen.count_tokens(p.get("prompt", ""), messages=p.get("messages", ()))
    if args.json:
        return _print_json(r)
    print(f"{r.token_count} tokens (context {r.context_length})")


def cmd_score(client: Client, args: argparse.Namespace) -> None:
    text = _read_text(args.text)
    r = client.textgen.score(text)
    if args.json:
        return _print_json(r)
    print(f"perplexity {r.perplexity:.2f} · total logprob {r.total_logprob:.2f} · {r.scored_tokens} tokens scored")
    if args.tokens:
        for t in r.tokens:
            lp = f"{t.logprob:8.3f}" if t.HasField("logprob") else "       -"
            print(f"  {lp}  {text[t.span.start:t.span.end]!r}")


# ---- music ---------------------------------------------------------------------------------------------------
def _write(path: str | None, data: bytes, what: str) -> str | None:
    if not path:
        return None
    if not data:
        print(f"maas: the answer has no {what}", file=sys.stderr)
        return None
    try:
        Path(path).write_bytes(data)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e}") from e
    return path


def cmd_compose(client: Client, args: argparse.Namespace) -> None:
    primer = b""
    if args.primer:
        try:
            primer = Path(args.primer).read_bytes()
        except OSError as e:
            raise UsageError(f"cannot read {args.primer}: {e}") from e
    stream = client.music.compose_stream(
        args.style, key=args.key or "", tempo_bpm=args.tempo, bars=args.bars, temperature=args.temperature,
        top_p=args.top_p, seed=args.seed, primer_midi=primer, program=args.program,
        time_signature=args.time_signature or "", chromatic=args.chromatic, audio=bool(args.wav),
        piano_roll=bool(args.png), sample_rate=args.sample_rate)
    progress = Progress(enabled=not args.quiet)
    started, notes, bars_done, total, done = time.monotonic(), 0, 0, args.bars or 8, None
    try:
        for event in stream:
            kind = event.WhichOneof("event")
            if kind == "plan":
                p = event.plan
                total = p.bars + p.primer_bars
                if args.json:
                    _print_json({"plan": _dict(p)})
                else:
                    primer = f" after {p.primer_bars} of primer" if p.primer_bars else ""
                    print(f"{p.style} in {p.key} · {p.tempo_bpm:g} bpm · {p.time_signature} · program {p.program} "
                          f"· seed {p.seed} · {p.bars} bars{primer}", flush=True)
            elif kind == "notes":
                notes += len(event.notes.notes)
                bars_done = max([bars_done, *(n.bar + 1 for n in event.notes.notes)])
                if args.json:
                    _print_json({"notes": _dict(event.notes)})
                progress.update(composition_status(bars_done, total, notes, time.monotonic() - started), bars_done)
            elif kind == "done":
                done = event.done
                progress.done(composition_status(done.bars, total, len(done.notes), time.monotonic() - started))
    finally:
        progress.done()
    if done is None:
        raise MaasError(grpc.StatusCode.UNKNOWN, "the stream ended without the finished piece")
    files = {k: v for k, v in (("midi", _write(args.midi, done.midi, "MIDI")),
                               ("wav", _write(args.wav, done.wav, "audio")),
                               ("png", _write(args.png, done.piano_roll_png, "piano roll"))) if v}
    if args.json:
        summary = _dict(done)
        for name in ("midi", "wav", "piano_roll_png"):
            summary.pop(name, None)
        summary["bytes"] = {"midi": len(done.midi), "wav": len(done.wav), "piano_roll_png": len(done.piano_roll_png)}
        summary["files"] = files
        return _print_json({"done": summary})
    reason = _enum(client.music.FinishReason, done.finish_reason, "FINISH_REASON_")
    print(f"{done.bars} bars · {len(done.notes)} notes · {done.duration_seconds:.1f} s · {done.tokens} tokens · "
          f"{reason}")
    for what, path in files.items():
        print(f"wrote {path} ({Path(path).stat().st_size} bytes, {what})")
    if not files:
        print("(no files written: --midi FILE, --wav FILE, --png FILE)", file=sys.stderr)


def cmd_styles(client: Client, args: argparse.Namespace) -> None:
    r = client.music.list_styles()
    if args.json:
        return _print_json(r)
    for s in r.styles:
        print(f"{s.name:12s} {s.time_signature:5s} {s.tempo_bpm:5.0f} bpm  program {s.program:3d}  "
              f"{s.pieces:4d} pieces  pitch {s.lowest_pitch}-{s.highest_pitch}  keys: {', '.join(s.common_keys)}")


# ---- recommendations -----------------------------------------------------------------------------------------
def _filter(args: argparse.Namespace) -> dict[str, Any]:
    return {"collections": args.collection or [], "composers": args.composer or [],
            "time_signatures": args.time_signature or [], "min_part_count": args.min_parts or 0,
            "max_part_count": args.max_parts or 0, "exclude_track_ids": args.exclude or [],
            "include_interacted": args.include_interacted}


def _print_recommendations(recs: Any) -> None:
    if not recs:
        print("(no tracks)")
    for i, r in enumerate(recs, 1):
        t = r.track
        by = f" — {t.composer}" if t.composer else ""
        print(f"{i:3d}. {r.score:6.3f}  {t.title}{by} [{t.collection}]  {t.track_id}")
        if r.reason:
            print(f"             {r.reason}")


def cmd_recommend(client: Client, args: argparse.Namespace) -> None:
    r = client.recommender.recommend(args.user or "", query_text=args.query or "", seed_track_ids=args.seed_track or [],
                                     k=args.k, filter=_filter(args))
    if args.json:
        return _print_json(r)
    if r.cold_start:
        print("(a new listener: popular tracks and content)")
    _print_recommendations(r.recommendations)


def cmd_similar(client: Client, args: argparse.Namespace) -> None:
    r = client.recommender.similar_tracks(args.track_id, k=args.k, filter=_filter(args))
    if args.json:
        return _print_json(r)
    _print_recommendations(r.recommendations)


def cmd_track(client: Client, args: argparse.Namespace) -> None:
    r = client.recommender.get_track(args.track_id)
    if args.json:
        return _print_json(r)
    t = r.track
    print(f"{t.title}" + (f" — {t.composer}" if t.composer else ""))
    for name in ("track_id", "collection", "key", "time_signature", "part_count", "note_count", "ambitus_semitones",
                 "origin"):
        value = getattr(t, name)
        if value:
            print(f"  {name:18s} {value}")
    if t.tags:
        print(f"  {'tags':18s} {', '.join(t.tags)}")
    if t.description:
        print(f"  {'description':18s} {t.description}")
    print(f"  {'interactions':18s} {r.interaction_count}")


def _load_json(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e}") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:  # JSON lines
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise UsageError(f"{path} is neither JSON nor JSON lines: {e}") from e


def cmd_record(client: Client, args: argparse.Namespace) -> None:
    events = []
    if args.file:
        data = _load_json(args.file)
        items = data.get("events", []) if isinstance(data, dict) else data
        try:
            events += [interaction(**{"user_id": args.user or "", **e}) for e in items]
        except (TypeError, KeyError) as e:
            raise UsageError(f"{args.file}: an event is user_id, track_id, type (play, like, skip, rating), "
                             f"rating, event_id, occurred_at (Unix seconds): {e}") from e
    for kind, item in args.events or ():  # in the order given
        if kind != "rating":
            events.append(interaction(args.user or "", item, kind))
            continue
        track, sep, value = item.rpartition("=")
        try:
            if not sep:
                raise ValueError(item)
            events.append(interaction(args.user or "", track, "rating", rating=float(value)))
        except ValueError:
            raise UsageError(f"--rate {item!r}: write TRACK_ID=RATING, e.g. m21:bach/bwv66.6.mxl=4") from None
    if args.event_id:
        if len(events) != 1:
            raise UsageError("--event-id is for one event; in a file, give each event its event_id")
        events[0].event_id = args.event_id
    r = client.recommender.record_interactions(events)
    if args.json:
        return _print_json(r)
    print(f"recorded {r.recorded} · duplicates {r.duplicates}")


def cmd_upsert(client: Client, args: argparse.Namespace) -> None:
    data = _load_json(args.file)
    tracks = data.get("tracks", []) if isinstance(data, dict) else data
    try:
        r = client.recommender.upsert_tracks(tracks)
    except (TypeError, ValueError, AttributeError) as e:  # a field the CatalogTrack does not have
        raise UsageError(f"{args.file}: {e}") from e
    if args.json:
        return _print_json(r)
    print(f"created {r.created} · updated {r.updated} · snapshot {r.snapshot_version}")


def cmd_retrain(client: Client, args: argparse.Namespace) -> None:
    r = client.recommender.retrain()
    if args.json:
        return _print_json(r)
    print(f"snapshot {r.snapshot_version}: {r.tracks} tracks, {r.users} users, {r.interactions} interactions, "
          f"{r.seconds:.1f} s")


# ---- KServe v2 -----------------------------------------------------------------------------------------------
def cmd_live(client: Client, args: argparse.Namespace) -> int:
    r = client.inference.server_live()
    print(json.dumps({"live": r.live}) if args.json else f"live: {str(r.live).lower()}")
    return 0 if r.live else 1


def cmd_ready(client: Client, args: argparse.Namespace) -> int:
    r = client.inference.model_ready(args.model) if args.model else client.inference.server_ready()
    print(json.dumps({"ready": r.ready}) if args.json else f"ready: {str(r.ready).lower()}")
    return 0 if r.ready else 1


def cmd_server_metadata(client: Client, args: argparse.Namespace) -> None:
    r = client.inference.server_metadata()
    if args.json:
        return _print_json(r)
    print(f"{r.name} {r.version}" + (f"  extensions: {', '.join(r.extensions)}" if r.extensions else ""))


def _tensors(tensors: Any) -> list[str]:
    return [f"{t.name} {t.datatype} [{', '.join(str(d) for d in t.shape)}]" for t in tensors]


def cmd_metadata(client: Client, args: argparse.Namespace) -> None:
    r = client.inference.model_metadata(args.model, args.version or "")
    if args.json:
        return _print_json(r)
    print(f"{r.name}  versions {', '.join(r.versions)}  platform {r.platform}")
    print("  inputs:  " + "; ".join(_tensors(r.inputs)))
    print("  outputs: " + "; ".join(_tensors(r.outputs)))


def cmd_infer(client: Client, args: argparse.Namespace) -> None:
    inputs: dict[str, Any] = {}
    for item in args.inputs:
        name, sep, value = item.partition("=")
        try:
            inputs[name] = json.loads(value)
        except json.JSONDecodeError:
            raise UsageError(f"{item!r}: write NAME=JSON, e.g. 'input_ids=[[101, 2307, 102]]'") from None
        if not sep:
            raise UsageError(f"{item!r}: write NAME=JSON, e.g. 'input_ids=[[101, 2307, 102]]'")
    meta = client.inference.model_metadata(args.model, args.version or "")
    datatypes = {t.name: t.datatype for t in meta.inputs}  # lists are cast to what the model takes
    r = client.inference.infer(args.model, inputs, datatypes=datatypes, outputs=args.output or (),
                               version=args.version or "")
    arrays = client.inference.outputs(r)
    if args.json:
        def plain(a: Any) -> Any:
            return [x.decode("utf-8", "replace") for x in a.reshape(-1)] if a.dtype == object else a.tolist()
        return _print_json({"model_name": r.model_name, "model_version": r.model_version,
                            "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(arrays[t.name].shape),
                                         "data": plain(arrays[t.name])} for t in r.outputs]})
    print(f"{r.model_name} version {r.model_version}")
    for t in r.outputs:
        a = arrays[t.name]
        flat = a.reshape(-1)
        head = ", ".join(f"{v:.4g}" if isinstance(v, float) else repr(v) for v in flat[:8].tolist())
        print(f"  {t.name} {t.datatype} {list(a.shape)}: [{head}{', ...' if flat.size > 8 else ''}]")


# ---- studio --------------------------------------------------------------------------------------------------
class _ConsoleOutput(studio_run.Output):
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def section(self, title: str) -> None:
        if not self.quiet:
            print(f"\n== {title}", flush=True)

    def line(self, text: str) -> None:
        if not self.quiet:
            print(f"   {text}", flush=True)

    def text(self, delta: str) -> None:
        if not self.quiet:
            sys.stdout.write(delta)
            sys.stdout.flush()

    def progress(self) -> Progress:
        return Progress(enabled=not self.quiet)


def cmd_studio(client: Client, args: argparse.Namespace) -> int:
    try:
        result = studio_run.run(client, args.sentence, out_dir=args.out, bars=args.bars, seed=args.seed,
                                lyrics_tokens=args.lyrics_tokens, audio=not args.no_audio,
                                recommendations=args.k, output=_ConsoleOutput(args.json))
    except OSError as e:
        raise UsageError(f"cannot write the output folder: {e}") from e
    if args.json:
        _print_json(result.to_json())
        return 0
    print(f"\n== {result.out_dir}/")
    for name, path in result.files.items():
        print(f"   {path.name:20s} {path.stat().st_size:9d} bytes")
    skipped = [f"{k} ({v.detail})" for k, v in result.steps.items() if v.status == "skipped"]
    if skipped:
        print("   skipped: " + "; ".join(skipped))
    return 0


# ---- health --------------------------------------------------------------------------------------------------
def cmd_health(client: Client, args: argparse.Namespace) -> int:
    names = args.service or ["", *(_routed(client))]
    rows, serving = [], True
    for name in names:
        try:
            status = client.health(name)
        except MaasError as e:
            status = "NOT_FOUND" if e.code.name == "NOT_FOUND" else f"{e.code.name}: {e.message}"
        serving &= status == "SERVING"
        rows.append((name or "(gateway)", status))
    if args.json:
        print(json.dumps({name: status for name, status in rows}))
    else:
        width = max(len(n) for n, _ in rows)
        for name, status in rows:
            print(f"{name:{width}s}  {status}")
    return 0 if serving else 1


def _routed(client: Client) -> list[str]:
    """The services the server lists through reflection (all of the suite, through the gateway)."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(client.channel)
    try:
        replies = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                 timeout=5, metadata=client._invoke.s.metadata("health", None)))
    except Exception:  # noqa: BLE001 - no reflection: only the server's own status is shown
        return []
    own = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection")
    return [s.name for r in replies for s in r.list_services_response.service if s.name not in own]


class _Event(argparse.Action):
    """--play / --like / --skip / --rate: (kind, value) appended to one list, so events keep their order."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, value: Any, option: str | None = None) -> None:
        namespace.events = [*(getattr(namespace, "events", None) or []), (self.const, value)]


# ---- the parser ----------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="maas", description="Call the maas suite (through its gateway).",
                                epilog="Run `maas COMMAND --help` for a command's options.")
    p.add_argument("--target", help="host:port (default $MAAS_TARGET, else 127.0.0.1:50051)")
    p.add_argument("--api-key", help="API key (default $MAAS_API_KEY)")
    p.add_argument("--timeout", type=float, help="seconds per call, retries included (default 30; 300 for "
                                                 "generate, compose and studio)")
    p.add_argument("--json", action="store_true", help="print the responses as JSON")
    p.add_argument("--tls", action="store_true", help="TLS with the system's roots")
    p.add_argument("--ca-file", help="PEM roots to trust (implies --tls)")
    p.add_argument("--cert-file", help="PEM client certificate (mutual TLS)")
    p.add_argument("--key-file", help="PEM key of the client certificate")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, fn: Callable, help_: str, texts: bool = False, long: bool = False
                ) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_, description=help_)
        if texts:
            c.add_argument("texts", nargs="+", metavar="TEXT")
        c.set_defaults(fn=fn, default_timeout=LONG_TIMEOUT_S if long else QUICK_TIMEOUT_S)
        return c

    # nlp-analysis
    command("sentiment", cmd_sentiment, "sentiment of each text (negative / neutral / positive)", texts=True)
    c = command("classify", cmd_classify, "zero-shot classification, or the built-in moods and genres", texts=True)
    c.add_argument("--labels", help="comma-separated labels (default: the built-in moods and genres)")
    c.add_argument("--multi-label", action="store_true", help="score each label on its own")
    c.add_argument("--template", help='hypothesis template with one "{}" (default: the model\'s)')
    c.add_argument("--groups", help="built-in groups to use: mood,genre (default: all)")
    c.add_argument("--top", type=int, default=5, help="labels shown per text (default 5)")
    command("embed", cmd_embed, "sentence embedding of each text", texts=True)
    command("entities", cmd_entities, "named entities of each text", texts=True)

    # text-generator
    def chat_options(c: argparse.ArgumentParser) -> None:
        c.add_argument("--chat", action="store_true", help="the text is a user message (the chat template applies)")
        c.add_argument("--system", help="a system message (implies --chat)")

    c = command("generate", cmd_generate, "generate text, printed as it is decoded", long=True)
    c.add_argument("prompt", metavar="PROMPT", help="text to continue, or with --chat the user's message ('-': stdin)")
    chat_options(c)
    c.add_argument("--max-new-tokens", type=int, help="tokens to generate at most (default: the server's, 128)")
    c.add_argument("--temperature", type=float, help="0: greedy; > 0: sampling (default: the server's, 0.7)")
    c.add_argument("--top-p", type=float, help="nucleus sampling, (0, 1]")
    c.add_argument("--top-k", type=int, default=0, help="sample among the k most likely tokens (0: no limit)")
    c.add_argument("--repetition-penalty", type=float, help="> 1 discourages repeats")
    c.add_argument("--seed", type=int, help="the same seed and settings give the same text")
    c.add_argument("--stop", action="append", help="stop before this text (repeatable)")
    c.add_argument("--logprobs", action="store_true", help="with --json: each token's log-probability")
    c.add_argument("--no-stream", action="store_true", help="one answer at the end (Generate, not GenerateStream)")
    c = command("tokens", cmd_tokens, "count the tokens of a text (or chat message, with the template)")
    c.add_argument("prompt", metavar="TEXT", help="the text ('-': stdin)")
    chat_options(c)
    c = command("score", cmd_score, "log-probability of every token of a text, and its perplexity")
    c.add_argument("text", metavar="TEXT", help="the text ('-': stdin)")
    c.add_argument("--tokens", action="store_true", help="list every token with its log-probability")

    # music-generator
    c = command("compose", cmd_compose, "compose a piece: the plan, progress while notes stream, then MIDI / WAV / "
                                        "PNG files", long=True)
    c.add_argument("--style", default="folk", help="chorale, folk, fiddle or renaissance (default folk; `maas styles`)")
    c.add_argument("--key", help='"D minor", "F# major", "Bb" (default: drawn from the style\'s keys by the seed)')
    c.add_argument("--tempo", type=float, help="quarter notes a minute, 20-300 (default: the style's)")
    c.add_argument("--bars", type=int, default=0, help="bars to compose, 1-32 (default 8)")
    c.add_argument("--seed", type=int, help="the same seed and settings give the same piece")
    c.add_argument("--temperature", type=float, help="sampling temperature, (0, 10] (default 1.0)")
    c.add_argument("--top-p", type=float, help="nucleus sampling, (0, 1] (default 0.95)")
    c.add_argument("--program", type=int, help="General MIDI instrument 0-127 (default: the style's)")
    c.add_argument("--time-signature", help='"3/4", "6/8", ... (default: the style\'s)')
    c.add_argument("--chromatic", action="store_true", help="allow notes outside the key's scale")
    c.add_argument("--primer", metavar="FILE", help="a MIDI file to continue")
    c.add_argument("--midi", metavar="FILE", help="write the MIDI file here")
    c.add_argument("--wav", metavar="FILE", help="render audio and write the WAV here")
    c.add_argument("--png", metavar="FILE", help="render a piano roll and write the PNG here")
    c.add_argument("--sample-rate", type=int, default=0, help="audio sample rate, 8000-96000 (default 44100)")
    c.add_argument("--quiet", action="store_true", help="no progress on stderr")
    command("styles", cmd_styles, "the styles the music model knows, with their defaults")

    # music-recommender
    def filter_options(c: argparse.ArgumentParser) -> None:
        c.add_argument("-k", "--k", type=int, default=10, help="how many tracks (default 10)")
        c.add_argument("--collection", action="append", help="only this collection (repeatable)")
        c.add_argument("--composer", action="append", help="only composers containing this (repeatable)")
        c.add_argument("--time-signature", action="append", help="only this time signature (repeatable)")
        c.add_argument("--min-parts", type=int, help="at least this many voices")
        c.add_argument("--max-parts", type=int, help="at most this many voices")
        c.add_argument("--exclude", action="append", help="leave this track out (repeatable)")
        c.add_argument("--include-interacted", action="store_true", help="keep tracks the user already played")

    c = command("recommend", cmd_recommend, "tracks for a listener, a sentence, seed tracks, or a mix")
    c.add_argument("--user", help="listener id (as in `maas record`)")
    c.add_argument("--query", help='what to listen to, in words: "calm organ music for a rainy evening"')
    c.add_argument("--seed-track", action="append", help="a track id to start from (repeatable)")
    filter_options(c)
    c = command("similar", cmd_similar, "tracks like one track")
    c.add_argument("track_id", metavar="TRACK_ID")
    filter_options(c)
    c = command("track", cmd_track, "one catalog track")
    c.add_argument("track_id", metavar="TRACK_ID")
    c = command("record", cmd_record, "record plays, likes, skips and ratings of a listener")
    c.add_argument("--user", help="the listener (default for the events of --file)")
    for flag, kind, metavar, what in (("--play", "play", "TRACK_ID", "a play"),
                                      ("--like", "like", "TRACK_ID", "a like"),
                                      ("--skip", "skip", "TRACK_ID", "a skip"),
                                      ("--rate", "rating", "TRACK_ID=RATING", "a rating 0-5")):
        c.add_argument(flag, action=_Event, dest="events", const=kind, metavar=metavar, help=f"{what} (repeatable)")
    c.add_argument("--file", help="JSON list (or JSON lines) of events: user_id, track_id, type ("
                                  + ", ".join(INTERACTIONS) + "), rating, event_id, occurred_at ('-': stdin)")
    c.add_argument("--event-id", help="the event's id (the retry key) when there is one event (default: a UUID)")
    c = command("upsert", cmd_upsert, "add or replace catalog tracks from a JSON file")
    c.add_argument("file", metavar="FILE", help='JSON list of tracks (or {"tracks": [...]}, or JSON lines; "-": '
                                                'stdin); fields as CatalogTrack: track_id, title, composer, ...')
    command("retrain", cmd_retrain, "refit the recommender from the store now")

    # KServe v2
    command("live", cmd_live, "KServe v2 ServerLive")
    c = command("ready", cmd_ready, "KServe v2 ServerReady, or ModelReady of one model")
    c.add_argument("model", nargs="?", metavar="MODEL")
    command("server-metadata", cmd_server_metadata, "KServe v2 ServerMetadata")
    c = command("metadata", cmd_metadata, "KServe v2 ModelMetadata: a model's inputs and outputs")
    c.add_argument("model", metavar="MODEL")
    c.add_argument("--version", help="model version (default: the latest)")
    c = command("infer", cmd_infer, "KServe v2 ModelInfer: inputs as NAME=JSON, cast to the model's datatypes")
    c.add_argument("model", metavar="MODEL")
    c.add_argument("inputs", nargs="+", metavar="NAME=JSON")
    c.add_argument("--output", action="append", help="only this output (repeatable)")
    c.add_argument("--version", help="model version (default: the latest)")

    # the showcase
    c = command("studio", cmd_studio, "a sentence in, a song out: analysis, lyrics, music (MIDI, WAV, piano roll) "
                                      "and similar pieces, in one folder", long=True)
    c.add_argument("sentence", metavar="SENTENCE", help="a sentence describing the song")
    c.add_argument("--out", metavar="DIR", help="output folder (default ./studio-<slug>-<seed>/)")
    c.add_argument("--bars", type=int, default=8, help="bars of music (default 8)")
    c.add_argument("--seed", type=int, help="seed of the lyrics and the music (default: random, in the folder name)")
    c.add_argument("--lyrics-tokens", type=int, default=160, help="tokens of lyrics at most (default 160)")
    c.add_argument("--no-audio", action="store_true", help="no WAV render")
    c.add_argument("-k", "--k", type=int, default=5, help="similar pieces to recommend (default 5)")

    c = command("health", cmd_health, "grpc.health.v1 status of the gateway and of every service it routes")
    c.add_argument("--service", action="append", help="only this service (repeatable); '' for the server")
    return p


def _report(command: str, e: MaasError, as_json: bool) -> None:
    print(f"maas: {command} failed: {e}", file=sys.stderr)
    for v in e.field_violations:
        print(f"  {v.field}: {v.description}", file=sys.stderr)
    if e.retry_after is not None:
        print(f"  the server asks to retry after {e.retry_after:.2f} s", file=sys.stderr)
    if as_json:  # the same shape as the Node.js and Go clients' errors
        print(json.dumps({"error": {"code": e.code.name, "message": e.message, "request_id": e.request_id,
                                    "field_violations": [{"field": v.field, "description": v.description}
                                                         for v in e.field_violations]}}), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # bars on a terminal that is not UTF-8
    try:
        client = Client(args.target, api_key=args.api_key, timeout=args.timeout or args.default_timeout,
                        tls=args.tls, ca_file=args.ca_file, cert_file=args.cert_file, key_file=args.key_file)
    except OSError as e:
        print(f"maas: {e}", file=sys.stderr)
        return 2
    with client:
        try:
            rc = args.fn(client, args)
        except MaasError as e:
            _report(args.command, e, args.json)
            return 1
        except UsageError as e:
            print(f"maas: {args.command}: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"\nmaas: {args.command} interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # `maas ... | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    return rc or 0
