"""tokentransfer: cross-style music generation by token transfer.

The package holds every computation of the Snakemake workflow; the workflow's scripts are thin
adapters around it. Importing it sets ``HF_HUB_OFFLINE=1``: nothing is ever fetched from a hub.

It also sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it (before torch loads its
OpenMP runtime): torch's OpenMP threads then sleep at a barrier instead of spinning. Snakemake
runs several torch jobs at once (``--cores 8`` on a laptop), and spinning threads of one job
take the cores from another's: on 2 cores shared with a 2-thread job, a fine-tuning step of
the default model took 1.02 s with spinning threads and 0.20 s passive, and sampling ran at
167 against 1,034 tokens/s (benchmarks/README.md). The policy changes no result, only waiting.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
