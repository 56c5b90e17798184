"""HuBERT-graph models: MERT-v1 (95M, 330M), HuBERT and wav2vec2, every layer."""
