"""The music catalog: track records, their human-readable descriptions, and the music21 core corpus as the seed.

A track's *profile* is the text its content vector is made from (style, form, instrumentation, metre, origin:
what a listener's query names); its *description* adds the title, key and range for people. Profiles are
derived from the corpus metadata bundle (no score parsing) plus a few cheap cues (dance type from the title,
instrumentation from the number of parts and the collection).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

# Key signature (sharps > 0, flats < 0) -> the major key it names (the minor relative shares it).
_KEYS = {0: ("C major", "A minor"), 1: ("G major", "E minor"), 2: ("D major", "B minor"),
         3: ("A major", "F-sharp minor"), 4: ("E major", "C-sharp minor"), 5: ("B major", "G-sharp minor"),
         6: ("F-sharp major", "D-sharp minor"), 7: ("C-sharp major", "A-sharp minor"),
         -1: ("F major", "D minor"), -2: ("B-flat major", "G minor"), -3: ("E-flat major", "C minor"),
         -4: ("A-flat major", "F minor"), -5: ("D-flat major", "B-flat minor"), -6: ("G-flat major", "E-flat minor"),
         -7: ("C-flat major", "A-flat minor")}

# Collection (first folder of the corpus path) -> (style/genre words, default instrumentation, era).
COLLECTIONS: dict[str, tuple[str, str, str]] = {
    "bach": ("Baroque Lutheran chorale, sacred hymn harmonised for church choir, calm and devotional",
             "four-part choir", "Baroque"),
    "palestrina": ("Renaissance sacred polyphony, a mass movement for unaccompanied choir (a cappella), serene and "
                   "meditative church music", "choir", "Renaissance"),
    "monteverdi": ("Italian Renaissance madrigal, secular vocal polyphony about love, expressive", "vocal ensemble",
                   "Renaissance"),
    "josquin": ("Renaissance Franco-Flemish polyphony, chanson and sacred vocal music", "vocal ensemble",
                "Renaissance"),
    "trecento": ("medieval Italian trecento music of the fourteenth century, sacred mass movement or ballata",
                 "voices", "Medieval"),
    "ciconia": ("medieval motet of the early fifteenth century", "voices", "Medieval"),
    "luca": ("medieval sacred Gloria", "voices", "Medieval"),
    "lusitano": ("Renaissance sacred motet", "voices", "Renaissance"),
    "essenFolksong": ("traditional folk song, a simple sung melody from the Essen folksong collection",
                      "solo voice", "Traditional"),
    "oneills1850": ("Irish traditional dance tune from O'Neill's Music of Ireland, lively and energetic",
                    "fiddle or tin whistle", "Traditional"),
    "ryansMammoth": ("Irish, Scottish and American fiddle tune from Ryan's Mammoth Collection, lively dance music",
                     "fiddle", "Traditional"),
    "airdsAirs": ("Scottish air or dance tune from Aird's Selection", "fiddle", "Traditional"),
    "nottingham-dataset": ("English folk dance tune, lively", "fiddle or melodeon", "Traditional"),
    "miscFolk": ("British and American folk tune or ballad", "fife or voice", "Traditional"),
    "leadSheet": ("American popular song lead sheet", "voice and chords", "Popular"),
    "beethoven": ("Classical string quartet by Beethoven, chamber music", "string quartet", "Classical"),
    "haydn": ("Classical string quartet by Haydn, elegant chamber music", "string quartet", "Classical"),
    "mozart": ("Classical chamber music by Mozart, graceful and elegant", "string quartet", "Classical"),
    "schumann_robert": ("Romantic music by Robert Schumann, string quartet or song", "string quartet", "Romantic"),
    "schumann_clara": ("Romantic piano music by Clara Schumann", "piano", "Romantic"),
    "chopin": ("Romantic solo piano mazurka by Chopin, a Polish dance, intimate and melancholy", "piano", "Romantic"),
    "joplin": ("ragtime piano by Scott Joplin, syncopated, upbeat and playful", "piano", "Ragtime"),
    "schoenberg": ("atonal modernist little piano pieces by Schoenberg, sparse and quiet", "piano", "Modern"),
    "webern": ("modernist sacred canon by Webern", "voice and clarinet", "Modern"),
    "schubert": ("Romantic art song (Lied) by Schubert, gentle and nostalgic", "voice and piano", "Romantic"),
    "verdi": ("Italian opera aria by Verdi", "voice and orchestra", "Romantic"),
    "handel": ("Baroque opera aria by Handel, slow and mournful", "voice and strings", "Baroque"),
    "corelli": ("Baroque trio sonata by Corelli", "two violins and continuo", "Baroque"),
    "cpebach": ("keyboard sonata by C. P. E. Bach", "keyboard", "Classical"),
    "weber": ("Romantic concertino for clarinet by Weber, virtuosic", "clarinet and orchestra", "Romantic"),
    "beach": ("late Romantic choral song by Amy Beach, tender prayer", "choir", "Romantic"),
    "johnson_j_r": ("hymn 'Lift Every Voice and Sing', uplifting anthem", "choir", "Popular"),
    "liliuokalani": ("Hawaiian song 'Aloha Oe', a gentle farewell", "voice and ensemble", "Popular"),
    "demos": ("short music21 demonstration excerpt", "", "Modern"),
    "theoryExercises": ("music theory exercise", "", "Modern"),
}
# Composer of a collection, for pieces whose metadata leave it out.
COMPOSERS = {"bach": "J.S. Bach", "palestrina": "Giovanni Pierluigi da Palestrina", "monteverdi": "Claudio Monteverdi",
             "josquin": "Josquin des Prez", "beethoven": "Ludwig van Beethoven", "haydn": "Joseph Haydn",
             "mozart": "Wolfgang Amadeus Mozart", "schumann_robert": "Robert Schumann",
             "schumann_clara": "Clara Schumann", "chopin": "Frédéric Chopin", "joplin": "Scott Joplin",
             "schoenberg": "Arnold Schoenberg", "webern": "Anton Webern", "schubert": "Franz Schubert",
             "verdi": "Giuseppe Verdi", "handel": "George Frideric Handel", "corelli": "Arcangelo Corelli",
             "cpebach": "C. P. E. Bach", "weber": "Carl Maria von Weber", "beach": "Amy Beach"}
_DANCES = ("jig", "reel", "hornpipe", "strathspey", "march", "waltz", "polka", "mazurka", "polonaise", "schottische",
           "quickstep", "clog", "planxty", "slide", "fling", "minuet", "gavotte", "lament", "air", "kyrie", "gloria",
           "credo", "sanctus", "agnus")
_DANCE_WORDS = {"jig": "a jig, a lively dance", "reel": "a reel, a fast dance", "hornpipe": "a hornpipe dance",
                "strathspey": "a Scottish strathspey dance", "march": "a march", "waltz": "a waltz",
                "polka": "a polka", "mazurka": "a mazurka", "polonaise": "a polonaise", "schottische": "a schottische",
                "quickstep": "a quickstep march", "clog": "a clog dance", "planxty": "a planxty, a harp tune",
                "slide": "a slide dance", "fling": "a Highland fling", "minuet": "a minuet", "gavotte": "a gavotte",
                "lament": "a slow lament, sad", "air": "a slow air", "kyrie": "a Kyrie", "gloria": "a Gloria",
                "credo": "a Credo", "sanctus": "a Sanctus", "agnus": "an Agnus Dei"}
_COUNTRIES = (("China", "China"), ("Deutschland", "Germany"), ("Schweiz", "Switzerland"), ("Luxemburg", "Luxembourg"),
              ("Frankreich", "France"), ("Oesterreich", "Austria"), ("sterreich", "Austria"), ("Polen", "Poland"),
              ("Niederlande", "the Netherlands"), ("Jugoslav", "Yugoslavia"), ("Ungarn", "Hungary"),
              ("Rumaenien", "Romania"), ("Russland", "Russia"), ("Schweden", "Sweden"), ("Daenemark", "Denmark"),
              ("Tschech", "Czechia"), ("Italien", "Italy"))


@dataclass
class CatalogTrack:
    """One playable piece. ``features`` are the symbolic ones (key_fifths, meter, parts, ambitus, notes)."""

    track_id: str
    title: str = ""
    composer: str = ""
    collection: str = ""
    time_signature: str = ""
    key: str = ""
    part_count: int = 0
    note_count: int = 0
    ambitus_semitones: int = 0
    origin: str = ""
    tags: list[str] = field(default_factory=list)
    description: str = ""
    profile: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CatalogTrack":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def _instrumentation(collection: str, parts: int) -> str:
    default = COLLECTIONS.get(collection, ("", "", ""))[1]
    if collection in ("essenFolksong", "oneills1850", "ryansMammoth", "airdsAirs", "nottingham-dataset", "miscFolk"):
        return default
    if default:
        return default
    return {0: "", 1: "solo melody", 2: "duo", 3: "trio", 4: "quartet"}.get(parts, f"{parts} parts")


def _meter_words(ts: str) -> str:
    if not ts:
        return ""
    top = ts.split("/")[0]
    kind = {"2": "duple", "4": "duple", "3": "triple", "6": "compound duple", "9": "compound triple",
            "12": "compound quadruple", "5": "irregular"}.get(top, "")
    return f"{ts} time" + (f" ({kind} metre)" if kind else "")


def profile_text(t: CatalogTrack) -> str:
    """The text the content vector is made from: what a listener would ask for, without the title."""
    style = COLLECTIONS.get(t.collection, ("", "", ""))[0]
    parts = [style or (f"{t.collection} music" if t.collection else "music")]
    dances = [_DANCE_WORDS[d] for d in t.tags if d in _DANCE_WORDS]
    if dances:
        parts.append("it is " + " and ".join(dances[:2]))
    inst = _instrumentation(t.collection, t.part_count)
    if inst:
        parts.append(f"for {inst}")
    if t.origin:
        parts.append(f"from {t.origin}")
    meter = _meter_words(t.time_signature)
    if meter:
        parts.append(f"in {meter}")
    return ", ".join(parts) + "."


def describe(t: CatalogTrack) -> str:
    """One line for people: title, composer, profile, key and range."""
    head = t.title or "Untitled"
    if t.composer:
        head += f" by {t.composer}"
    tail = []
    if t.key:
        tail.append(f"key signature of {t.key}")
    if t.ambitus_semitones:
        tail.append(f"range {t.ambitus_semitones} semitones")
    if t.note_count:
        tail.append(f"{t.note_count} notes")
    return f"{head}: {t.profile or profile_text(t)}" + (f" ({', '.join(tail)})" if tail else "")


def title_tags(title: str) -> list[str]:
    words = set(re.findall(r"[a-z]+", title.lower()))
    return [d for d in _DANCES if d in words]


def _country(locale: str | None) -> str:
    if not locale:
        return ""
    for needle, name in _COUNTRIES:
        if needle in locale:
            return name
    return "Central Europe" if "europa" in locale.lower() else ""


def _clean(s: Any) -> str:
    return " ".join(str(s).split()) if s else ""


def music21_catalog() -> Iterator[CatalogTrack]:
    """Every piece of the music21 core corpus with metadata, from its prebuilt metadata bundle (no parsing)."""
    from music21 import corpus

    bundle = corpus.corpora.CoreCorpus().metadataBundle
    # bundle[i] copies the whole entry list per call: walk the underlying dict instead.
    for entry in bundle._metadataEntries.values():  # noqa: SLF001
        md = entry.metadata
        if md is None:
            continue
        path = str(entry.sourcePath)
        collection = path.split("/")[0]
        if collection in ("demos", "theoryExercises") or path.endswith(".rntxt"):
            continue  # test fixtures, not music anyone would listen to
        track_id = f"m21:{path}" + (f"#{entry.number}" if entry.number is not None else "")
        stem = " ".join(path.rsplit(".", 1)[0].split("/")[1:]).replace("_", " ")
        title = _clean(md.title) or _clean(re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", stem)).title().replace("Bwv", "BWV")
        fifths = md.keySignatureFirst
        key = " / ".join(_KEYS[fifths]) if isinstance(fifths, int) and fifths in _KEYS else ""
        amb = getattr(md, "ambitus", None)
        t = CatalogTrack(
            track_id=track_id, title=title, composer=_clean(md.composer) or COMPOSERS.get(collection, ""),
            collection=collection,
            time_signature=_clean(md.timeSignatureFirst), key=key, part_count=int(md.numberOfParts or 0),
            note_count=int(md.noteCount or 0), ambitus_semitones=int(amb.semitones) if amb else 0,
            origin=_country(md.localeOfComposition), tags=title_tags(title))
        t.profile = profile_text(t)
        t.description = describe(t)
        yield t
