"""torch / transformers / peft: data building, losses, the trainer entry point."""
