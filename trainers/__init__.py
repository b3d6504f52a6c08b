"""Fine-tuning on whatever hardware is there: `dispatch` picks a backend (hf, unsloth, mlx),
each behind the protocol in `backend`; `train.run` is the stage."""

import os

# No network while training: models come from local folders only, and the Hugging Face libraries'
# usage telemetry (a background thread that posts to the Hub) stays off. Set before they are imported.
for _name in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
    os.environ.setdefault(_name, "1")
