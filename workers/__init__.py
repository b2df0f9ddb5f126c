"""Everything that computes and knows no Django: algorithms, the LLM client, the trainer."""
