"""music-recommender: hybrid recommendations over the music21 catalog (maas.music.v1.MusicRecommender)."""
