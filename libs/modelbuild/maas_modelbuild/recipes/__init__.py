"""Every model of the suite, in build order (dependencies are resolved either way)."""

from maas_modelbuild.recipes import (creative_labels, float16, music_corpus, music_recommender, music_transformer,
                                     ner, sentiment, smollm2, text_encoder)

RECIPES = [text_encoder.RECIPE, sentiment.RECIPE, creative_labels.RECIPE, ner.RECIPE,
           smollm2.RECIPE, smollm2.INT8_RECIPE, float16.TEXT_RECIPE, music_corpus.RECIPE,
           music_transformer.RECIPE, float16.MUSIC_RECIPE, music_recommender.RECIPE]
