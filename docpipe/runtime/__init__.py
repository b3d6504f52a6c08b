"""What several stages use, beneath them all: the pretrained bases and the packaged models
(`pretrained`, `packaged`), the llama.cpp runner's settings and chat prompts (`llama`), the trained model
loaded and merged (`merge`) and written as a GGUF (`gguf_writer`, `gguf_vocab`) for export and evaluation,
the hardware probe and thread choice (`hardware`), offline settings (`offline`) and the prompt/answer
format (`chat_format`).
Nothing here imports a stage; heavy packages are imported inside the functions that use them."""
