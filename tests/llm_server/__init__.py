"""A local OpenAI-compatible server that answers in each role's reply contract, with injectable faults."""
