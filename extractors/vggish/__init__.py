"""VGGish (Hershey et al. 2017), AudioSet's released embedding, on torchvggish's weights."""
