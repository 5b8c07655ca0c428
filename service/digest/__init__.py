"""Summaries, condensation and fact extraction without an LLM, and the ports an LLM can serve."""
