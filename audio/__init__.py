"""Audio decoding shared by `mfs.libraries` (probing headers on a scan) and `mfs.extractors`
(decoding tracks for a model): its own package so neither imports the other's internals."""
