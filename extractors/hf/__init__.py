"""Models in Hugging Face's layouts (config.json + weights), found offline and loaded into
transformers' own classes: the ground the transformer families stand on."""
