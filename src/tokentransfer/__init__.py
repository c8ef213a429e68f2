"""tokentransfer: cross-style music generation by token transfer.

The package holds every computation of the Snakemake workflow; the workflow's scripts are thin
adapters around it. Importing it sets ``HF_HUB_OFFLINE=1``: nothing is ever fetched from a hub.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__version__ = "0.1.0"
