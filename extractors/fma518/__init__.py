"""fma518: FMA's 518 hand-crafted features. `extractor.py` is what the registry names (light:
no torch); `features.py` computes them with the DSP modules beside it (`spectral`, `cqt`,
`frame_stats`, `segments`) and the C kernels (`_native.c`, loaded by `native`)."""
