"""Load jobs: sources, chunking, the record manager, the embedding cache, migrate, reindex, aliases."""
