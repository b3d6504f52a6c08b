"""Fine-tuning on whatever hardware is there: `dispatch` picks a backend (hf, unsloth, mlx),
each behind the protocol in `backend`; `train.run` is the stage."""

import os

# No network while training: models come from local folders only, and the Hugging Face libraries'
# usage telemetry (a background thread that posts to the Hub) stays off. Set before they are imported.
# TQDM_DISABLE: docpipe draws its own progress, and transformers' GGUF conversion draws a plain tqdm
# bar that its own switch does not reach (read by tqdm when it is imported, so it is set here too).
for _name in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK", "TQDM_DISABLE"):
    os.environ.setdefault(_name, "1")
