"""Music libraries on disk → rows of the store's `tracks` table (GTZAN, FMA, own folders)."""
