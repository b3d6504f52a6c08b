"""GGUF export and the Ollama Modelfile (issue: export); nothing here yet."""
