"""A small random-initialised Llama with SmolLM2's real tokenizer and chat template, for the device check.

    python scripts/cuda/build_tiny_llama.py CONVERTED_SMOLLM2_FOLDER .device/tiny-llama

The packaged SmolLM2 (98 MB GGUF, 538 MB converted) cannot travel in a 64 MiB call; this model has
SmolLM2's vocabulary (49152, tied embeddings) and architecture family, 4 layers of width 256, bf16.
Its answers are noise: it checks that the CUDA code paths run, not what they learn.
"""

import shutil
import sys
from pathlib import Path

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

src, dest = Path(sys.argv[1]), Path(sys.argv[2])
dest.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
config = LlamaConfig(
    vocab_size=49152,
    hidden_size=256,
    intermediate_size=768,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=64,
    hidden_act="silu",
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
    rope_parameters={"rope_theta": 100000.0, "rope_type": "default"},
    tie_word_embeddings=True,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=2,
    initializer_range=0.02,
    attention_bias=False,
    mlp_bias=False,
)
model = LlamaForCausalLM(config).to(torch.bfloat16)
model.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=2)
model.save_pretrained(dest)
for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
    shutil.copy2(src / name, dest / name)
(dest / "README.md").write_text(
    "Random-initialised LlamaForCausalLM (4 layers, hidden 256, vocab 49152, tied, bf16) with SmolLM2-135M-Instruct's\n"
    "tokenizer and chat template, built by scripts/cuda/build_tiny_llama.py for scripts/cuda/check.sh. Not a trained model.\n"
)
print(sum(p.numel() for p in model.parameters()), "parameters")
