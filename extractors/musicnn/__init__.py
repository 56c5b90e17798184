"""musicnn (Pons & Serra 2019), MTT and MSD. `extractor.py` is what the registry names (light:
no torch); `network.py` is the PyTorch network and log-mel front end, loaded with the
published weights read by `tf_checkpoint.py`."""
