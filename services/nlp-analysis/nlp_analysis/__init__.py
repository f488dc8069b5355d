"""nlp-analysis: sentiment, zero-shot and built-in classification, named entities, embeddings."""
