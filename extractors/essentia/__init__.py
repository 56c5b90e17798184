"""Essentia's MusicExtractor descriptors through the `essentia` wheel."""
