"""The vocabulary, the grammar and MIDI in and out, without the model."""

import io
import random

import mido
import numpy as np
import pretty_midi
import pytest

from music_generator.midi import MidiError, read_primer, write_midi
from music_generator.stats import in_key_share, piece_stats
from music_generator.vocab import (INDEX_SPAN, BarClock, Grammar, Key, Vocabulary, canonical_key, estimate_key,
                                   make_tokenizer, parse_key)


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary(make_tokenizer())


@pytest.mark.parametrize("text,key", [("D minor", Key(2, "minor")), ("F# major", Key(6, "major")),
                                      ("Bb", Key(10, "major")), ("c# min", Key(1, "minor")),
                                      ("Am", Key(9, "minor")), ("E♭ major", Key(3, "major"))])
def test_keys_parse(text, key):
    assert parse_key(text) == key


@pytest.mark.parametrize("text", ["", "H major", "D minor minor", "C##", "12", "major"])
def test_malformed_keys_are_refused(text):
    with pytest.raises(ValueError):
        parse_key(text)


def test_key_estimation_finds_a_scale_and_its_relative_minor():
    c_major = [60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60]
    assert estimate_key(c_major, [1] * len(c_major)) == Key(0, "major")
    a_minor = [57, 60, 64, 69, 68, 69, 71, 72, 64, 57, 52, 57]  # arpeggios on A, the leading tone G#
    assert estimate_key(a_minor, [2, 1, 1, 2, 1, 2, 1, 1, 1, 2, 1, 3]) == Key(9, "minor")


def run_grammar(vocab, grammar, rng, steps=2000):
    """Random logits through the grammar, as the engine samples: the stream it allows."""
    out = []
    for _ in range(steps):
        allowed = grammar(rng.standard_normal(vocab.size).astype(np.float32))
        token = int(np.argmax(allowed))
        assert np.isfinite(allowed[token])
        grammar.advance(token)
        out.append(token)
        if token == vocab.eos:
            break
    return out


@pytest.mark.parametrize("ts,bars", [((4, 4), 4), ((6, 8), 3), ((3, 4), 5), ((2, 2), 1)])
def test_grammar_gives_exactly_the_bars_asked_for_in_the_meter_and_key(vocab, ts, bars):
    key = Key(2, "minor")
    grammar = Grammar(vocab, ts, bars, key=key, pitch_range=(48, 84))
    ids = run_grammar(vocab, grammar, np.random.default_rng(bars))
    assert ids[-1] == vocab.eos and vocab.bars_in(ids) == bars
    notes = vocab.decode(ids, ts)
    bar_len = ts[0] * 4 / ts[1]
    assert notes and all(48 <= n.pitch <= 84 for n in notes)
    assert all(n.pitch % 12 in key.pitch_classes() for n in notes)
    assert all(n.bar * bar_len <= n.start < (n.bar + 1) * bar_len for n in notes)
    assert [n.start for n in notes] == sorted(n.start for n in notes)
    # every bar sounds to its end: no bar is cut short on a rest
    assert all(max(n.start + n.duration for n in notes if n.bar == b) >= (b + 1) * bar_len - 1e-9
               for b in range(bars))


def token(vocab, kind, value):
    table = {"position": vocab.position_of, "pitch": vocab.pitch_of, "duration": vocab.duration_of}[kind]
    return int(np.flatnonzero(table == value)[0])


def test_a_bar_ends_only_once_its_notes_sound_to_its_end(vocab):
    grammar = Grammar(vocab, (3, 4), 2, key=None, pitch_range=(48, 84))
    quarter = token(vocab, "duration", 1.0)
    for t in (vocab.bar, vocab.time_signature_id((3, 4)), token(vocab, "position", 0), token(vocab, "pitch", 60),
              quarter, token(vocab, "pitch", 64), token(vocab, "duration", 3.0)):
        grammar.advance(t)
    mask = np.isfinite(grammar(np.zeros(vocab.size, dtype=np.float32)))
    assert mask[vocab.bar]  # the dotted half on beat 1 reaches the end of the 3/4 bar
    grammar = Grammar(vocab, (3, 4), 2, key=None, pitch_range=(48, 84))
    for t in (vocab.bar, vocab.time_signature_id((3, 4)), token(vocab, "position", 0), token(vocab, "pitch", 60),
              quarter, token(vocab, "position", 4), token(vocab, "pitch", 62), quarter):
        grammar.advance(t)
    mask = np.isfinite(grammar(np.zeros(vocab.size, dtype=np.float32)))
    assert not mask[vocab.bar] and not mask[vocab.eos]  # beat 3 is still empty
    # positions count from the onset before: 4 steps on is beat 3; 8 would leave the bar
    assert mask[token(vocab, "position", 4)] and not mask[token(vocab, "position", 8)]


def test_two_voices_may_share_a_pitch_at_an_onset_but_pitches_never_go_down(vocab):
    grammar = Grammar(vocab, (4, 4), 1, key=None, pitch_range=(48, 84))
    for t in (vocab.bar, vocab.time_signature_id((4, 4)), token(vocab, "position", 0), token(vocab, "pitch", 60),
              token(vocab, "duration", 1.0)):
        grammar.advance(t)
    mask = np.isfinite(grammar(np.zeros(vocab.size, dtype=np.float32)))
    assert mask[token(vocab, "pitch", 60)] and mask[token(vocab, "pitch", 64)] and not mask[token(vocab, "pitch", 59)]
    # a unison: two voices on one pitch (15 % of the corpus's chorale onsets have one)
    for t in (token(vocab, "pitch", 60), token(vocab, "duration", 1.0)):
        grammar.advance(t)
    mask = np.isfinite(grammar(np.zeros(vocab.size, dtype=np.float32)))
    assert not mask[token(vocab, "pitch", 60)] and mask[token(vocab, "pitch", 61)]  # not a third voice on it


def test_the_bar_clock_numbers_tokens_by_onset_bar_and_index(vocab):
    notes = [(0, 1, 60), (1, 0.5, 62), (1.5, 0.5, 64), (2, 1, 65), (3, 3, 67)]  # 3/4: two bars
    ids = vocab.prefix("folk", canonical_key("major"), "fast", 2) + vocab.encode_notes(notes, (3, 4)) + [vocab.eos]
    positions = BarClock(vocab, (3, 4))(ids)
    assert (positions % INDEX_SPAN).tolist() == list(range(len(ids)))
    slots = (positions // INDEX_SPAN % vocab.bar_slots).tolist()
    voices = (positions // INDEX_SPAN // vocab.bar_slots).tolist()
    assert slots[:6] == [0] * 6  # the conditioning prefix comes before any bar
    # bar 1: the bar line and time signature share a slot; each onset (beat steps 0, 4, 6, 8) one more; every
    # token of an onset the same
    marks = [i for i, t in enumerate(ids) if t == vocab.bar or vocab.names[t].startswith(("TimeSig", "Position"))]
    bar_1 = [slots[i] for i in marks[:6]]
    line = bar_1[0]
    assert bar_1 == [line, line, line + 1, line + 5, line + 7, line + 9]
    onset = ids.index(vocab.ids["Pitch_62"])
    assert slots[onset - 1] == slots[onset] == slots[onset + 1] == line + 5
    assert slots[ids.index(vocab.bar, 7)] != line  # bar 2 of a group of four: another set of slots
    assert voices[:9] == [0] * 9 and voices[9:11] == [1, 1]  # a melody: one note sounding at a time
    assert max(voices) == 1
    # token by token, as the engine feeds them, the same numbers; a window from bar 5 numbers bar 5 as bar 1 of
    # a group
    one_by_one = BarClock(vocab, (3, 4))
    assert np.concatenate([one_by_one([t]) for t in ids]).tolist() == positions.tolist()
    assert (BarClock(vocab, (3, 4), first_bar=4)(ids) == positions).all()
    # meters have their own slots
    assert (BarClock(vocab, (4, 4))(ids)[6:] // INDEX_SPAN != positions[6:] // INDEX_SPAN).all()


def test_the_bar_clock_counts_the_notes_sounding_at_each_onset(vocab):
    # a whole-bar bass note under a chord on beat 1 whose top note is held to beat 3, a new pair on beat 2
    notes = [(0, 4, 48), (0, 1, 60), (0, 1, 64), (0, 3, 67), (1, 1, 62), (1, 1, 65), (3, 1, 60)]
    ids = vocab.encode_notes(notes, (4, 4))
    voices = (BarClock(vocab, (4, 4))(ids) // INDEX_SPAN // vocab.bar_slots).tolist()
    # onset steps 0, 4 and 12 (relative: 0, 4, 8): none sounding, then bass and top held, then bass alone
    assert [voices[i] for i, t in enumerate(ids) if vocab.names[t].startswith("Position")] == [0, 2, 1]
    struck = [voices[i] for i, t in enumerate(ids) if vocab.pitch_of[t] >= 0]
    assert struck == [1, 2, 3, 4, 3, 4, 2]  # each pitch adds one to those sounding


def test_notes_survive_tokens(vocab):
    notes = [(0.0, 1.0, 60), (1.0, 0.5, 64), (1.5, 0.5, 67), (2.0, 2.0, 72), (4.0, 4.0, 48), (4.0, 4.0, 55)]
    ids = vocab.encode_notes(notes, (4, 4))
    back = vocab.decode(ids, (4, 4))
    assert sorted((n.start, n.duration, n.pitch) for n in back) == sorted(notes)


def test_in_the_last_bar_the_model_ending_the_bar_ends_the_piece(vocab):
    """The last bar cannot be followed by another: the probability the model gives "Bar" there goes to EOS,
    rather than the bar filling up with notes the model did not want."""
    bar = (vocab.bar, vocab.time_signature_id((4, 4)), token(vocab, "position", 0), token(vocab, "pitch", 60),
           token(vocab, "duration", 4.0))  # one bar, filled by a whole note
    grammar = Grammar(vocab, (4, 4), 1, key=None, pitch_range=(48, 84))
    for t in bar:
        grammar.advance(t)
    logits = np.zeros(vocab.size, dtype=np.float32)
    logits[vocab.bar] = 5.0  # the model wants the next bar
    allowed = grammar(logits)
    assert not np.isfinite(allowed[vocab.bar])
    assert allowed[vocab.eos] == pytest.approx(np.logaddexp(0.0, 5.0))
    assert int(np.argmax(allowed)) == vocab.eos
    more = Grammar(vocab, (4, 4), 2, key=None, pitch_range=(48, 84))  # not the last bar: untouched
    for t in bar:
        more.advance(t)
    assert more(logits)[vocab.bar] == 5.0 and not np.isfinite(more(logits)[vocab.eos])


def test_midi_written_reads_back_with_mido_pretty_midi_and_as_a_primer(vocab):
    notes = vocab.decode(vocab.encode_notes([(0.0, 1.0, 62), (1.0, 1.0, 65), (2.0, 2.0, 69), (2.0, 2.0, 62)],
                                            (3, 4)), (3, 4))
    midi = write_midi(notes, tempo_bpm=90, time_signature=(3, 4), program=40, velocities=[80] * len(notes))
    assert len(mido.MidiFile(file=io.BytesIO(midi)).tracks) == 1
    pm = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    assert pm.instruments[0].program == 40 and len(pm.instruments[0].notes) == 4
    assert pm.get_tempo_changes()[1][0] == pytest.approx(90)
    assert pm.instruments[0].notes[-1].end == pytest.approx(4 * 60 / 90, abs=1e-3)
    primer = read_primer(midi, max_notes=100)
    assert primer.time_signature == (3, 4) and primer.program == 40 and primer.tempo_bpm == pytest.approx(90)
    assert sorted(primer.notes) == sorted((n.start, n.duration, n.pitch) for n in notes)


def test_the_primer_parser_only_ever_says_not_midi_on_random_and_truncated_bytes(vocab):
    notes = vocab.decode(vocab.encode_notes([(i * 0.5, 0.5, 60 + i % 12) for i in range(64)], (4, 4)), (4, 4))
    good = write_midi(notes, tempo_bpm=120, time_signature=(4, 4), program=0, velocities=[80] * len(notes))
    rng = random.Random(7)
    cases = [good[:n] for n in range(0, len(good), 7)]
    cases += [bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 400))) for _ in range(300)]
    cases += [b"MThd" + bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 200))) for _ in range(300)]
    flipped = []
    for _ in range(300):
        b = bytearray(good)
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(len(b))] = rng.getrandbits(8)
        flipped.append(bytes(b))
    for data in cases + flipped:
        try:
            primer = read_primer(data, max_notes=5000)
        except MidiError:
            continue
        assert all(d > 0 for _, d, _ in primer.notes)  # a corrupted file that still parses: sane notes
    with pytest.raises(MidiError):
        read_primer(good, max_notes=10)


def test_statistics_of_a_known_piece(vocab):
    ids = vocab.encode_notes([(0.0, 2.0, 60), (0.0, 2.0, 64), (2.0, 2.0, 67), (4.0, 4.0, 72)], (4, 4))
    notes = vocab.decode(ids, (4, 4))
    s = piece_stats(notes, 2)
    assert s["notes_per_bar"] == 2 and s["pitch_range"] == 12 and s["polyphony"] == pytest.approx(4 / 3)
    assert s["pitch_class_entropy"] == pytest.approx(1.5)  # C twice, E, G: -(.5 log .5 + 2 * .25 log .25)
    assert in_key_share(notes, Key(0, "major")) == 1.0 and in_key_share(notes, Key(1, "major")) == 0.5  # C is B# in C# major


def test_a_pitch_struck_again_while_it_sounds_ends_there_in_midi_and_reads_back():
    from music_generator.vocab import Note

    notes = [Note(67, 0.0, 2.0, 0), Note(67, 1.0, 1.0, 0), Note(60, 0.0, 2.0, 0)]  # two voices meet on G
    midi = write_midi(notes, tempo_bpm=60, time_signature=(4, 4), program=0, velocities=[80] * 3)
    pm = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    assert sorted((n.pitch, n.start, n.end) for n in pm.instruments[0].notes) == [(60, 0, 2), (67, 0, 1), (67, 1, 2)]
    assert sorted(read_primer(midi, max_notes=10).notes) == [(0.0, 1.0, 67), (0.0, 2.0, 60), (1.0, 1.0, 67)]


def test_two_voices_in_unison_sound_as_one_note_in_midi():
    from music_generator.vocab import Note

    notes = [Note(60, 0.0, 2.0, 0), Note(64, 0.0, 1.0, 0), Note(64, 0.0, 2.0, 0), Note(64, 2.0, 1.0, 0)]
    midi = write_midi(notes, tempo_bpm=60, time_signature=(4, 4), program=0, velocities=[80] * 4)
    pm = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    assert sorted((n.pitch, n.start, n.end) for n in pm.instruments[0].notes) == [(60, 0, 2), (64, 0, 2), (64, 2, 3)]
