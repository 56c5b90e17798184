"""PANNs CNN14 (Kong et al. 2020), AudioSet-trained, on its published checkpoints."""
