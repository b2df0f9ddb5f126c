"""REST API endpoints that show rows of several apps together (the console is the top layer): the review
queues, whose tasks point at judgments, answers, instructions, task labels and LLM calls."""
