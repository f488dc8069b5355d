"""``maas studio``: a sentence in, a song folder out, against the real suite through the gateway; and its mood -> music
table (``maas_client.studio.choose_music``) on its own."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import grpc
import pytest

from maas_client import Client, MaasError
from maas_client import studio
from maas_client.studio import Analysis, choose_music

ROOT = Path(__file__).resolve().parents[2]
SAD = "My best friend died and I cried alone all night; everything feels empty and grey."
HAPPY = "We are dancing and laughing in the sunshine, what a wonderful happy day!"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 9, 10, 11)}  # minor: + raised 6th, 7th
PC = {"C": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "F": 5, "F#": 6, "Gb": 6, "G": 7, "G#": 8,
      "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11}


def recommender_enabled() -> bool:
    from maas_cluster.config import load

    return any(s.name == "music-recommender" for s in load(ROOT / "cluster.toml").enabled())


def scale(key: str) -> set[int]:
    tonic, mode = key.split()
    return {(PC[tonic] + d) % 12 for d in SCALES[mode]}


# ---- the table, no server ------------------------------------------------------------------------------------
def analysis(sentence: str = "a song", sentiment: str = "neutral", moods=(), genres=()) -> Analysis:
    p = {"negative": 0.9, "neutral": 0.05, "positive": 0.05} if sentiment == "negative" else \
        {"negative": 0.05, "neutral": 0.05, "positive": 0.9} if sentiment == "positive" else \
        {"negative": 0.1, "neutral": 0.8, "positive": 0.1}
    return Analysis(sentence, sentiment, p, list(moods), list(genres))


def test_sad_is_minor_and_slower_than_happy_which_is_major():
    sad = choose_music(analysis(sentiment="negative", moods=[("sad", 0.9), ("dark", 0.05)]))
    happy = choose_music(analysis(sentiment="positive", moods=[("happy", 0.8), ("energetic", 0.15)]))
    assert sad.mode.value == "minor" and sad.key.value.endswith("minor")
    assert happy.mode.value == "major" and happy.key.value.endswith("major")
    assert sad.tempo_bpm.value < 80 < 120 < happy.tempo_bpm.value
    assert "sad" in sad.tempo_bpm.reason and "negative" in sad.mode.reason


def test_a_negative_sentence_with_a_calm_mood_is_minor_and_calm_alone_is_major():
    assert choose_music(analysis(sentiment="negative", moods=[("calm", 0.9)])).mode.value == "minor"
    assert choose_music(analysis(moods=[("calm", 0.9)])).mode.value == "major"


def test_style_from_words_then_genre_then_mood():
    words = choose_music(analysis("an Irish jig for the pub", moods=[("sad", 0.9)], genres=[("classical", 0.9)]))
    assert words.style.value == "fiddle" and "'jig'" in words.style.reason
    assert choose_music(analysis("monks at prayer", genres=[("folk", 0.9)])).style.value == "chorale"
    assert choose_music(analysis("a medieval feast", moods=[("happy", 1.0)])).style.value == "renaissance"
    assert choose_music(analysis(moods=[("calm", 0.9)], genres=[("classical", 0.7)])).style.value == "chorale"
    assert choose_music(analysis(moods=[("sad", 0.9)], genres=[("folk", 0.7)])).style.value == "folk"
    assert choose_music(analysis(moods=[("energetic", 0.9)], genres=[("country", 0.7)])).style.value == "fiddle"
    # a genre the styles cannot play, or an unsure one, leaves it to the mood
    assert choose_music(analysis(moods=[("dark", 0.9)], genres=[("metal", 0.9)])).style.value == "renaissance"
    assert choose_music(analysis(moods=[("sad", 0.9)], genres=[("folk", 0.2)])).style.value == "chorale"


def test_key_is_the_styles_most_common_of_that_mode_else_a_relative():
    keys = {"folk": ["G major", "D major", "E minor"], "chorale": ["F major"]}
    assert choose_music(analysis(moods=[("sad", 1.0)], genres=[("folk", 0.9)]), keys).key.value == "E minor"
    assert choose_music(analysis(moods=[("sad", 1.0)]), keys).key.value == "D minor"  # F major's relative
    assert studio.relative_key("A minor") == "C major" and studio.relative_key("Eb major") == "C minor"


def test_the_same_analysis_gives_the_same_choices():
    a = analysis("a quiet song", moods=[("nostalgic", 0.6), ("calm", 0.3)], genres=[("folk", 0.5)])
    assert choose_music(a) == choose_music(a)
    assert choose_music(a).tempo_bpm.value == round((0.6 * 76 + 0.3 * 68) / 0.9)


# ---- against the suite ---------------------------------------------------------------------------------------
def test_studio_writes_a_song_folder_whose_files_parse_and_whose_choices_follow_the_mood(maas_cli, tmp_path: Path):
    import mido
    import pretty_midi

    sad = maas_cli("studio", SAD, "--bars", "4", "--seed", "11", "--lyrics-tokens", "60", timeout=600)
    assert sad.returncode == 0, sad.stdout + sad.stderr
    folder = tmp_path / f"studio-{studio.slug(SAD)}-11"  # the default folder name
    assert folder.is_dir(), sad.stdout
    assert f"== {folder.name}/" in sad.stdout or str(folder) in sad.stdout
    assert "== lyrics (text-generator)" in sad.stdout and "composing [" in sad.stderr

    happy = maas_cli("studio", HAPPY, "--bars", "4", "--seed", "12", "--lyrics-tokens", "30", "--no-audio",
                     "--out", "happy", timeout=600)
    assert happy.returncode == 0, happy.stdout + happy.stderr

    a_sad = json.loads((folder / "analysis.json").read_text())
    a_happy = json.loads((tmp_path / "happy" / "analysis.json").read_text())
    assert a_sad["sentiment"]["label"] == "negative" and a_sad["moods"][0]["label"] == "sad"
    assert a_sad["choices"]["mode"]["value"] == "minor" and a_sad["choices"]["key"]["value"].endswith(" minor")
    assert a_happy["choices"]["mode"]["value"] == "major" and a_happy["choices"]["key"]["value"].endswith(" major")
    assert a_sad["choices"]["tempo_bpm"]["value"] < a_happy["choices"]["tempo_bpm"]["value"]
    for choice in ("style", "mode", "key", "tempo_bpm"):  # every choice explains itself
        assert len(a_sad["choices"][choice]["reason"]) > 10
    assert "sad" in a_sad["choices"]["tempo_bpm"]["reason"] and "valence" in a_sad["choices"]["mode"]["reason"]
    assert a_sad["plan"]["key"] == a_sad["choices"]["key"]["value"] and a_sad["plan"]["seed"] == "11"

    files = {p.name for p in folder.iterdir()}
    expected = {"song.mid", "song.wav", "piano_roll.png", "lyrics.txt", "analysis.json", "recommendations.json",
                "summary.md"}
    assert expected <= files, files
    midi = pretty_midi.PrettyMIDI(str(folder / "song.mid"))
    notes = [n for inst in midi.instruments for n in inst.notes]
    assert notes and {n.pitch % 12 for n in notes} <= scale(a_sad["choices"]["key"]["value"])
    _, tempi = midi.get_tempo_changes()
    assert abs(tempi[0] - a_sad["choices"]["tempo_bpm"]["value"]) < 1
    assert mido.MidiFile(folder / "song.mid").length > 1
    with wave.open(str(folder / "song.wav")) as w:
        assert w.getnframes() / w.getframerate() > 1.0
    assert (folder / "song.wav").read_bytes()[:4] == b"RIFF"
    assert (folder / "piano_roll.png").read_bytes()[:8] == PNG_SIGNATURE
    assert len((folder / "lyrics.txt").read_text().split()) >= 5
    summary = (folder / "summary.md").read_text()
    assert SAD in summary and "## Musical choices" in summary and "## Lyrics" in summary
    assert not (tmp_path / "happy" / "song.wav").exists() and (tmp_path / "happy" / "song.mid").exists()

    recs = json.loads((folder / "recommendations.json").read_text())
    assert recs["query_text"] == SAD
    if recommender_enabled():
        assert recs["status"] == "done" and len(recs["recommendations"]) == 5, recs
        assert all(r["track_id"] and r["reason"] for r in recs["recommendations"])
        assert "## Similar pieces from the catalog" in summary
    else:
        assert recs["status"] == "skipped"


class _Unrouted:
    """A service the gateway does not route: every call is UNIMPLEMENTED, as the gateway answers it."""

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            raise MaasError(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        return call


def test_a_service_that_is_not_routed_is_a_skipped_step_not_a_crash(suite_gateway: str, tmp_path: Path):
    with Client(suite_gateway, timeout=300) as maas:
        maas.music = _Unrouted()
        maas.recommender = _Unrouted()
        result = studio.run(maas, HAPPY, out_dir=tmp_path / "out", bars=2, seed=3, lyrics_tokens=16)
    assert result.steps["analysis"].status == "done" and result.steps["lyrics"].status == "done"
    assert result.steps["music"].status == "skipped" and "UNIMPLEMENTED" in result.steps["music"].detail
    assert result.steps["recommendations"].status == "skipped"
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names == {"lyrics.txt", "analysis.json", "recommendations.json", "summary.md"}
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "music: skipped" in summary and "recommendations: skipped" in summary
    assert result.music.mode.value == "major"  # the analysis still chose the music


class _NoAudioRender:
    """music-generator on a server without FluidSynth: UNAVAILABLE after the plan whenever audio is asked for."""

    def __init__(self, music) -> None:
        self.music = music

    def __getattr__(self, name: str):
        return getattr(self.music, name)

    def compose_stream(self, style: str, **request):
        if not request.get("audio"):
            yield from self.music.compose_stream(style, **request)
            return
        for event in self.music.compose_stream(style, **{**request, "audio": False}):
            yield event  # the plan
            raise MaasError(grpc.StatusCode.UNAVAILABLE, "audio rendering is not installed here: fluidsynth not found")


def test_a_server_without_audio_rendering_still_gives_the_midi_and_the_piano_roll(suite_gateway: str, tmp_path: Path):
    with Client(suite_gateway, timeout=300) as maas:
        maas.music = _NoAudioRender(maas.music)
        maas.recommender = _Unrouted()
        result = studio.run(maas, SAD, out_dir=tmp_path / "out", bars=2, seed=4, lyrics_tokens=8)
    assert result.steps["music"].status == "done" and "no audio" in result.steps["music"].detail
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"song.mid", "piano_roll.png"} <= names and "song.wav" not in names
