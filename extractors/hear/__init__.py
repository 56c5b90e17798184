"""Any module that implements the HEAR 2021 API, as the extractor `hear:<module>`."""
