"""LAION CLAP (music): audio embeddings and zero-shot genre from text prompts."""
