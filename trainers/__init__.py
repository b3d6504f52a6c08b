"""Fine-tuning on whatever hardware is there: `dispatch` picks a backend (hf, unsloth, mlx),
each behind the protocol in `backend`; `train.run` is the stage."""

from docpipe.runtime import offline

offline.apply()  # before transformers, peft or TRL is imported
