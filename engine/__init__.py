"""Reference inference engine: a small PyTorch causal LM behind an OpenAI-compatible API.

It is a separate process that the control plane drives over HTTP, exactly like vLLM or
Triton, so nothing here imports the control plane, the collectors or the tuner.
"""
