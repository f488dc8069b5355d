"""``maas studio "<a sentence describing a song>"``: the whole suite in one command, one output folder.

1. nlp-analysis reads the sentence: sentiment, the built-in moods and genres (ClassifyText), entities.
2. ``choose_music`` turns that into a style, a key and a tempo, each with its reason (the tables below).
3. text-generator writes lyrics (GenerateStream, chat messages with the sentence, mood and entities), streamed.
4. music-generator composes the piece (ComposeStream, progress shown) with a WAV and a piano roll.
5. music-recommender recommends catalog pieces for the sentence (Recommend by query_text).
6. Everything goes into one folder: song.mid, song.wav, piano_roll.png, lyrics.txt, analysis.json,
   recommendations.json, summary.md.

A service the gateway does not route (UNIMPLEMENTED) or cannot reach (UNAVAILABLE) is a skipped step, reported in
the summary, not a failure; any other error ends the run (``MaasError``).

How the sentence becomes music (deterministic: the same analysis always gives the same choices)
------------------------------------------------------------------------------------------------
* Mode. valence = (P(positive) - P(negative)) + sum over the 12 moods of score x the mood's valence (MOODS);
  minor when valence < 0, else major. Sad, dark, angry, tense, nostalgic and a negative sentiment pull to minor;
  happy, playful, hopeful, energetic, romantic, calm and a positive sentiment pull to major.
* Tempo. The best mood's tempo (MOODS), or the two best moods' weighted by their scores when the second has at
  least SECOND_MOOD_MIN: sad 60, dark 64, calm 68, nostalgic 76,
  romantic 80, hopeful 100, epic 108, tense 116, happy 126, playful 132, angry 140, energetic 148 bpm.
* Style, the first rule that applies:
  1. a word of the sentence (STYLE_WORDS): medieval, renaissance, lute, madrigal, ... -> renaissance; choir,
     hymn, church, gospel, prayer, ... -> chorale; fiddle, jig, reel, celtic, irish, ... -> fiddle; folk, ballad,
     village, campfire, country, ... -> folk;
  2. the best genre, when its score is at least GENRE_MIN: classical -> chorale; folk and country -> fiddle at
     120 bpm or more, else folk;
  3. the best mood's style (MOODS): chorale for sad, calm and epic; renaissance for dark, tense and romantic;
     folk for happy, hopeful and nostalgic; fiddle for playful, energetic and angry.
* Key. The style's most common key of that mode in the model's training pieces (ListStyles), else the relative
  key of its most common key, else D minor / G major.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import grpc
from google.protobuf.json_format import MessageToDict

from maas_client.console import Progress, composition_status
from maas_client.errors import MaasError

# mood -> (valence, tempo in bpm, style when neither a word of the sentence nor the genre decides)
MOODS: dict[str, tuple[float, float, str]] = {
    "happy": (1.0, 126, "folk"),
    "playful": (1.0, 132, "fiddle"),
    "hopeful": (1.0, 100, "folk"),
    "energetic": (0.5, 148, "fiddle"),
    "romantic": (0.5, 80, "renaissance"),
    "calm": (0.25, 68, "chorale"),
    "epic": (0.0, 108, "chorale"),
    "nostalgic": (-0.5, 76, "folk"),
    "tense": (-0.75, 116, "renaissance"),
    "sad": (-1.0, 60, "chorale"),
    "dark": (-1.0, 64, "renaissance"),
    "angry": (-1.0, 140, "fiddle"),
}
NEUTRAL_MOOD = (0.0, 96, "folk")  # a mood label the table does not know
# style -> words of the sentence that call for it, checked in this order
STYLE_WORDS: dict[str, tuple[str, ...]] = {
    "renaissance": ("medieval", "renaissance", "ancient", "early music", "lute", "madrigal", "troubadour",
                    "minstrel", "tudor", "elizabethan", "harpsichord"),
    "chorale": ("choir", "choral", "chorale", "hymn", "church", "cathedral", "gospel", "prayer", "religious",
                "sacred", "organ", "bach"),
    "fiddle": ("fiddle", "fiddler", "jig", "reel", "hornpipe", "celtic", "irish", "scottish", "ceilidh",
               "bluegrass", "hoedown"),
    "folk": ("folk", "ballad", "village", "campfire", "countryside", "shanty", "country"),
}
GENRE_MIN = 0.3  # the best genre decides the style only when at least this sure
SECOND_MOOD_MIN = 0.1  # the second mood counts in the tempo from this score on
# entities worth a mention in the lyrics (OntoNotes labels), when the model is at least ENTITY_MIN sure
NAMED = ("PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LANGUAGE")
ENTITY_MIN = 0.5
FAST_BPM = 120  # folk or country at this tempo or faster: fiddle tunes
DEFAULT_KEYS = {"minor": "D minor", "major": "G major"}
STYLES = ("chorale", "folk", "fiddle", "renaissance")
_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
SKIPPABLE = (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE)


# ---- analysis and choices (pure, no calls) -------------------------------------------------------------------
@dataclass
class Analysis:
    sentence: str
    sentiment: str = "neutral"  # negative | neutral | positive
    sentiment_scores: dict[str, float] = field(default_factory=lambda: {"negative": 0.0, "neutral": 1.0,
                                                                        "positive": 0.0})
    moods: list[tuple[str, float]] = field(default_factory=list)  # best first
    genres: list[tuple[str, float]] = field(default_factory=list)  # best first
    entities: list[dict[str, Any]] = field(default_factory=list)  # text, label, score


@dataclass
class Choice:
    value: Any
    reason: str


@dataclass
class MusicChoices:
    style: Choice
    mode: Choice
    key: Choice
    tempo_bpm: Choice


def _keys_in(text: str) -> tuple[int, str] | None:
    m = re.match(r"^\s*([A-Ga-g])\s*(#|b)?\s*(major|minor)\s*$", text)
    if not m:
        return None
    pc = _PC[m.group(1).upper()] + {"#": 1, "b": -1}.get(m.group(2) or "", 0)
    return pc % 12, m.group(3)


def relative_key(key: str) -> str | None:
    """'C major' -> 'A minor', 'D minor' -> 'F major'."""
    parsed = _keys_in(key)
    if parsed is None:
        return None
    pc, mode = parsed
    return f"{_NAMES[(pc - 3) % 12]} minor" if mode == "major" else f"{_NAMES[(pc + 3) % 12]} major"


def choose_key(mode: str, style: str, common_keys: dict[str, Sequence[str]]) -> Choice:
    keys = list(common_keys.get(style, ()))
    for k in keys:
        parsed = _keys_in(k)
        if parsed and parsed[1] == mode:
            return Choice(k, f"the most common {mode} key of the {style} pieces the model learnt from")
    if keys and (rel := relative_key(keys[0])):
        return Choice(rel, f"the relative {mode} of {keys[0]}, the most common key of the {style} pieces")
    return Choice(DEFAULT_KEYS[mode], f"the default {mode} key (the style's keys were not available)")


def _words(sentence: str, words: Sequence[str]) -> list[str]:
    low = sentence.lower()
    return [w for w in words if re.search(rf"\b{re.escape(w)}\b", low)]


def choose_music(a: Analysis, common_keys: dict[str, Sequence[str]] | None = None) -> MusicChoices:
    """The style, mode, key and tempo for an analysis, each with its reason (see the module doc's tables)."""
    moods = a.moods or [("", 0.0)]
    # mode
    sentiment = a.sentiment_scores.get("positive", 0.0) - a.sentiment_scores.get("negative", 0.0)
    mood_valence = sum(score * MOODS.get(name, NEUTRAL_MOOD)[0] for name, score in a.moods)
    valence = sentiment + mood_valence
    mode = "minor" if valence < 0 else "major"
    top = ", ".join(f"{n} {s:.2f}" for n, s in a.moods[:2]) or "no moods"
    mode_choice = Choice(mode, f"valence {valence:+.2f} = sentiment {sentiment:+.2f} ({a.sentiment}) + moods "
                               f"{mood_valence:+.2f} ({top}): {'below' if mode == 'minor' else 'at or above'} 0")
    # tempo
    best = [(n, s) for i, (n, s) in enumerate(moods[:2]) if n and (i == 0 or s >= SECOND_MOOD_MIN)]
    if best and sum(s for _, s in best) > 0:
        weight = sum(s for _, s in best)
        bpm = round(sum(s * MOODS.get(n, NEUTRAL_MOOD)[1] for n, s in best) / weight)
        parts = " and ".join(f"{n} ({s:.2f}: {MOODS.get(n, NEUTRAL_MOOD)[1]:.0f} bpm)" for n, s in best)
        tempo_choice = Choice(float(bpm), f"the tempos of the moods {parts}, weighted by their scores")
    else:
        bpm = round(NEUTRAL_MOOD[1])
        tempo_choice = Choice(float(bpm), "no mood was found: a moderate tempo")
    # style
    style, why = "", ""
    for name, words in STYLE_WORDS.items():
        if found := _words(a.sentence, words):
            style, why = name, f"the sentence says {', '.join(repr(w) for w in found)}"
            break
    if not style and a.genres:
        genre, score = a.genres[0]
        if score >= GENRE_MIN and genre == "classical":
            style, why = "chorale", f"the genre is classical ({score:.2f})"
        elif score >= GENRE_MIN and genre in ("folk", "country"):
            style = "fiddle" if bpm >= FAST_BPM else "folk"
            why = f"the genre is {genre} ({score:.2f}) at {bpm} bpm ({'>=' if bpm >= FAST_BPM else '<'} " \
                  f"{FAST_BPM}: {'a fiddle tune' if style == 'fiddle' else 'a folk song'})"
    if not style:
        name = moods[0][0]
        style = MOODS.get(name, NEUTRAL_MOOD)[2]
        genre = f"; the genre ({a.genres[0][0]} {a.genres[0][1]:.2f}) does not decide" if a.genres else ""
        why = f"the mood is {name} ({moods[0][1]:.2f}){genre}" if name else "no mood was found: the default style"
    return MusicChoices(style=Choice(style, why), mode=mode_choice, key=choose_key(mode, style, common_keys or {}),
                        tempo_bpm=tempo_choice)


def slug(sentence: str, words: int = 5, limit: int = 40) -> str:
    parts = re.findall(r"[a-z0-9]+", sentence.lower())[:words]
    return ("-".join(parts)[:limit].strip("-")) or "song"


def lyrics_messages(a: Analysis, music: MusicChoices) -> list[dict[str, str]]:
    moods = ", ".join(n for n, _ in a.moods[:2]) or "open"
    names = ", ".join(dict.fromkeys(e["text"] for e in a.entities if e["label"] in NAMED and e["score"] >= ENTITY_MIN))
    mention = f" Mention {names}." if names else ""
    return [
        {"role": "system", "content": "You are a songwriter. You write short song lyrics: two verses and a chorus, "
                                      "at most twelve lines, with no title and no comments."},
        {"role": "user", "content": f"Write the lyrics of a song about this: \"{a.sentence}\". The mood is {moods}; "
                                    f"the music is a {music.style.value} piece in {music.key.value} at "
                                    f"{music.tempo_bpm.value:.0f} bpm.{mention}"},
    ]


# ---- the run -------------------------------------------------------------------------------------------------
class Output:
    """Where a run reports (the ``maas`` command prints; ``Output()`` is silent)."""

    def section(self, title: str) -> None: ...

    def line(self, text: str) -> None: ...

    def text(self, delta: str) -> None: ...  # lyrics as they arrive

    def progress(self) -> Progress:
        return Progress(enabled=False)


@dataclass
class Step:
    status: str  # "done" | "skipped"
    detail: str = ""


@dataclass
class StudioResult:
    out_dir: Path
    sentence: str
    seed: int
    analysis: Analysis
    music: MusicChoices
    steps: dict[str, Step]
    files: dict[str, Path]
    lyrics: str = ""
    plan: dict[str, Any] = field(default_factory=dict)
    recommendations: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "sentence": self.sentence, "seed": self.seed,
                "steps": {k: asdict(v) for k, v in self.steps.items()},
                "files": {k: str(v) for k, v in self.files.items()}, "music": asdict(self.music),
                "plan": self.plan}


def _skip(error: MaasError, service: str) -> Step:
    why = "not routed by the gateway" if error.code == grpc.StatusCode.UNIMPLEMENTED else "not reachable"
    return Step("skipped", f"{service} {why} ({error.code.name}: {error.message})")


def analyse(client: Any, sentence: str) -> Analysis:
    a = Analysis(sentence)
    s = client.nlp.analyze_sentiment(sentence).results[0]
    a.sentiment = client.nlp.Sentiment.Name(s.label).removeprefix("SENTIMENT_").lower()
    a.sentiment_scores = {"negative": round(s.negative, 4), "neutral": round(s.neutral, 4),
                          "positive": round(s.positive, 4)}
    scores = client.nlp.classify(sentence).results[0].scores
    a.moods = [(x.label, round(x.score, 4)) for x in scores if x.group == "mood"]
    a.genres = [(x.label, round(x.score, 4)) for x in scores if x.group == "genre"]
    a.entities = [{"text": e.text, "label": e.label, "score": round(e.score, 4)}
                  for e in client.nlp.extract_entities(sentence).results[0].entities]
    return a


def run(client: Any, sentence: str, *, out_dir: str | Path | None = None, bars: int = 8, seed: int | None = None,
        lyrics_tokens: int = 160, audio: bool = True, piano_roll: bool = True, recommendations: int = 5,
        output: Output | None = None) -> StudioResult:
    """One studio run with a ``Client`` (blocking). Writes the folder and returns what it did."""
    out = output or Output()
    seed = secrets.randbelow(1_000_000) if seed is None else seed
    folder = Path(out_dir) if out_dir else Path(f"studio-{slug(sentence)}-{seed}")
    folder.mkdir(parents=True, exist_ok=True)
    steps: dict[str, Step] = {}
    files: dict[str, Path] = {}

    # 1. analysis
    out.section("analysis (nlp-analysis)")
    try:
        analysis = analyse(client, sentence)
        steps["analysis"] = Step("done")
        out.line(f"sentiment  {analysis.sentiment} ({analysis.sentiment_scores[analysis.sentiment]:.2f})")
        out.line("moods      " + " · ".join(f"{n} {s:.2f}" for n, s in analysis.moods[:3]))
        out.line("genres     " + " · ".join(f"{n} {s:.2f}" for n, s in analysis.genres[:3]))
        out.line("entities   " + (", ".join(f"{e['text']} ({e['label']})" for e in analysis.entities) or "(none)"))
    except MaasError as e:
        if e.code not in SKIPPABLE:
            raise
        analysis = Analysis(sentence)
        steps["analysis"] = _skip(e, "nlp-analysis")
        out.line(f"skipped: {steps['analysis'].detail}")

    # 2. the music plan
    common_keys: dict[str, list[str]] = {}
    try:
        common_keys = {s.name: list(s.common_keys) for s in client.music.list_styles().styles}
    except MaasError as e:
        if e.code not in SKIPPABLE:
            raise
    music = choose_music(analysis, common_keys)
    out.section("musical choices")
    for name, c in (("style", music.style), ("key", music.key), ("tempo", music.tempo_bpm)):
        value = f"{c.value:.0f} bpm" if name == "tempo" else c.value
        out.line(f"{name:6s} {value:12s} {c.reason}")
    out.line(f"mode   {music.mode.value:12s} {music.mode.reason}")

    # 3. lyrics
    out.section("lyrics (text-generator)")
    lyrics = ""
    try:
        pieces, finish = [], 0
        for event in client.textgen.generate_stream(messages=lyrics_messages(analysis, music),
                                                    max_new_tokens=lyrics_tokens, temperature=0.8, top_p=0.95,
                                                    repetition_penalty=1.1, seed=seed):
            if event.text:
                pieces.append(event.text)
                out.text(event.text)
            finish = event.finish_reason or finish
        lyrics = "".join(pieces).strip()
        if finish == client.textgen.FinishReason.Value("FINISH_REASON_LENGTH") and "\n" in lyrics:
            lyrics = lyrics.rsplit("\n", 1)[0].rstrip()  # the token limit cut the last line
        out.text("\n")
        steps["lyrics"] = Step("done", f"{len(lyrics.splitlines())} lines")
        files["lyrics"] = folder / "lyrics.txt"
        files["lyrics"].write_text(lyrics + "\n", encoding="utf-8")
    except MaasError as e:
        if e.code not in SKIPPABLE:
            raise
        steps["lyrics"] = _skip(e, "text-generator")
        out.line(f"skipped: {steps['lyrics'].detail}")

    # 4. the piece
    out.section("music (music-generator)")
    plan: dict[str, Any] = {}
    try:
        done, plan, note = compose(client, out, style=music.style.value, key=music.key.value,
                                   tempo_bpm=music.tempo_bpm.value, bars=bars, seed=seed, audio=audio,
                                   piano_roll=piano_roll)
        steps["music"] = Step("done", f"{done.bars} bars, {len(done.notes)} notes, {done.duration_seconds:.1f} s"
                                      + (f"; {note}" if note else ""))
        out.line(f"{done.bars} bars · {len(done.notes)} notes · {done.duration_seconds:.1f} s")
        for name, data, filename in (("midi", done.midi, "song.mid"), ("wav", done.wav, "song.wav"),
                                     ("piano_roll", done.piano_roll_png, "piano_roll.png")):
            if data:
                files[name] = folder / filename
                files[name].write_bytes(data)
    except MaasError as e:
        if e.code not in SKIPPABLE:
            raise
        steps["music"] = _skip(e, "music-generator")
        out.line(f"skipped: {steps['music'].detail}")

    # 5. recommendations
    out.section("similar pieces (music-recommender)")
    recs: list[dict[str, Any]] = []
    try:
        reply = client.recommender.recommend(query_text=sentence, k=recommendations)
        for i, r in enumerate(reply.recommendations, 1):
            t = r.track
            recs.append({"rank": i, "track_id": t.track_id, "title": t.title, "composer": t.composer,
                         "collection": t.collection, "key": t.key, "time_signature": t.time_signature,
                         "score": round(r.score, 4), "reason": r.reason})
            by = f" — {t.composer}" if t.composer else ""
            out.line(f"{i}. {t.title}{by} [{t.collection}] {r.score:.3f}  {r.reason}")
        steps["recommendations"] = Step("done", f"{len(recs)} pieces")
    except MaasError as e:
        if e.code not in SKIPPABLE:
            raise
        steps["recommendations"] = _skip(e, "music-recommender")
        out.line(f"skipped: {steps['recommendations'].detail}")

    result = StudioResult(folder, sentence, seed, analysis, music, steps, files, lyrics, plan, recs)
    _write_reports(result)
    return result


def compose(client: Any, out: Output, **request: Any) -> tuple[Any, dict[str, Any], str]:
    """ComposeStream with progress; (the ComposeResponse, the plan as a dict, a note on what was left out).
    When the audio render is not installed on the server (UNAVAILABLE after the plan), the same piece (same
    seed) is composed again without audio."""
    try:
        return (*_compose_stream(client, out, **request), "")
    except _AfterPlan as e:
        if not request.get("audio") or e.error.code != grpc.StatusCode.UNAVAILABLE:
            raise e.error from None
        out.line(f"audio rendering failed ({e.error.message}): composing again without audio")
        return (*_compose_stream(client, out, **{**request, "audio": False}), f"no audio: {e.error.message}")


class _AfterPlan(Exception):
    def __init__(self, error: MaasError) -> None:
        self.error = error


def _compose_stream(client: Any, out: Output, **request: Any) -> tuple[Any, dict[str, Any]]:
    progress = out.progress()
    started, notes, bar, total, plan, done = time.monotonic(), 0, 0, request.get("bars") or 8, {}, None
    try:
        for event in client.music.compose_stream(**request):
            kind = event.WhichOneof("event")
            if kind == "plan":
                p = event.plan
                plan = MessageToDict(p, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
                total = p.bars + p.primer_bars
                out.line(f"{p.style} in {p.key} · {p.tempo_bpm:.0f} bpm · {p.time_signature} · program {p.program} "
                         f"· seed {p.seed} · {p.bars} bars")
            elif kind == "notes":
                notes += len(event.notes.notes)
                bar = max([bar, *(n.bar + 1 for n in event.notes.notes)])
                progress.update(composition_status(bar, total, notes, time.monotonic() - started), bar)
            elif kind == "done":
                done = event.done
                progress.done(composition_status(done.bars, total, len(done.notes), time.monotonic() - started))
    except MaasError as e:
        progress.done()
        if plan:
            raise _AfterPlan(e) from None
        raise
    if done is None:
        raise MaasError(grpc.StatusCode.UNKNOWN, "the composition stream ended without the finished piece")
    return done, plan


def _write_reports(r: StudioResult) -> None:
    a, m = r.analysis, r.music
    analysis = {
        "sentence": r.sentence,
        "sentiment": {"label": a.sentiment, **a.sentiment_scores},
        "moods": [{"label": n, "score": s} for n, s in a.moods],
        "genres": [{"label": n, "score": s} for n, s in a.genres],
        "entities": a.entities,
        "choices": {"style": asdict(m.style), "mode": asdict(m.mode), "key": asdict(m.key),
                    "tempo_bpm": asdict(m.tempo_bpm), "bars": r.plan.get("bars"), "seed": r.seed},
        "plan": r.plan,
        "steps": {k: asdict(v) for k, v in r.steps.items()},
        "rules": "maas_client.studio (module doc): mode from valence, tempo from the two best moods, style from "
                 "the sentence's words, else the genre, else the mood; key from the style's common keys",
    }
    r.files["analysis"] = r.out_dir / "analysis.json"
    r.files["analysis"].write_text(json.dumps(analysis, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    step = r.steps.get("recommendations", Step("skipped"))
    recs = {"query_text": r.sentence, "status": step.status, "detail": step.detail,
            "recommendations": r.recommendations}
    r.files["recommendations"] = r.out_dir / "recommendations.json"
    r.files["recommendations"].write_text(json.dumps(recs, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    r.files["summary"] = r.out_dir / "summary.md"
    r.files["summary"].write_text(summary_markdown(r), encoding="utf-8")


def summary_markdown(r: StudioResult) -> str:
    a, m = r.analysis, r.music
    lines = [f"# {r.sentence}", "", f"maas studio, seed {r.seed}", "", "## Analysis", "",
             f"- sentiment: {a.sentiment} ({a.sentiment_scores.get(a.sentiment, 0):.2f})",
             "- moods: " + (", ".join(f"{n} {s:.2f}" for n, s in a.moods[:3]) or "-"),
             "- genres: " + (", ".join(f"{n} {s:.2f}" for n, s in a.genres[:3]) or "-"),
             "- entities: " + (", ".join(f"{e['text']} ({e['label']})" for e in a.entities) or "-"),
             "", "## Musical choices", "", "| | choice | why |", "|---|---|---|",
             f"| style | {m.style.value} | {m.style.reason} |", f"| mode | {m.mode.value} | {m.mode.reason} |",
             f"| key | {m.key.value} | {m.key.reason} |",
             f"| tempo | {m.tempo_bpm.value:.0f} bpm | {m.tempo_bpm.reason} |", ""]
    if r.lyrics:
        lines += ["## Lyrics", "", *(f"> {line}" if line else ">" for line in r.lyrics.splitlines()), ""]
    if r.recommendations:
        lines += ["## Similar pieces from the catalog", ""]
        lines += [f"{x['rank']}. {x['title']}{' — ' + x['composer'] if x['composer'] else ''} "
                  f"(`{x['track_id']}`, {x['score']:.3f}): {x['reason']}" for x in r.recommendations]
        lines.append("")
    lines += ["## Steps", ""] + [f"- {k}: {v.status}{' — ' + v.detail if v.detail else ''}"
                                 for k, v in r.steps.items()]
    lines += ["", "## Files", ""] + [f"- `{p.name}`" for k, p in r.files.items() if k != "summary"]
    lines += ["- `summary.md`", ""]
    return "\n".join(lines)
