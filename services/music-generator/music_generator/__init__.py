"""music-generator: symbolic music from a model trained on the music21 corpus (maas.music.v1.MusicGenerator)."""
