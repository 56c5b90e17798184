"""The Audio Spectrogram Transformer (AudioSet), over consecutive windows of the whole track."""
