"""Retrieval: dense, keyword and hybrid search, MMR, recommendations, question answering, evaluation."""
