"""EnCodec: the encoder's continuous latent before quantisation."""
