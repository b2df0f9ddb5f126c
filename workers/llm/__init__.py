"""The OpenAI-compatible async client, prompt templates, reply parsers and offline backends."""
