"""The rules' input functions (tokentransfer.inputs): a corpus's sources by kind (real Tegridy
zips of ../shared/data/tegridy, verified once per size and mtime; real folders), and the files
each rule reads, on configs filled in as rules/common.smk fills them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.test_workflow_plan import filled
from tokentransfer import inputs
from tokentransfer.config import ConfigError
from tokentransfer.layout import RESULTS as L
from tokentransfer.tegridy import TegridyError, VerifiedMirror, catalogue

SMALL = "Gothic-Horror-Movies-CC-BY-NC-SA.zip"
SEEDS = "Tegridy-MIDI-Seeds-Dataset-CC-BY-NC-SA.zip"


def tegridy_config(mirror, folder) -> dict:
    corpora = {
        "base": {"role": "base", "sources": [{"music21": {"composer": "palestrina"}}]},
        "bach": {
            "role": "target",
            "sources": [{"tegridy": {"zip": SMALL}}, {"dir": {"path": str(folder)}}],
        },
        "jazz": {"role": "target", "sources": [{"tegridy": {"zip": SEEDS}}]},
    }
    config = filled({"corpora": corpora})
    config["tegridy"]["mirror"] = str(mirror)
    return config


def tampered(src: Path, dst: Path) -> None:
    """A copy of ``src`` at ``dst`` with one byte flipped: same size, other sha256."""
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dst.write_bytes(bytes(data))


def test_tegridy_and_dir_sources_by_kind(tmp_path, tegridy_dir):
    folder = tmp_path / "bach_midi"
    folder.mkdir()
    config = tegridy_config(tegridy_dir, folder)
    mirror = VerifiedMirror()
    got = inputs.ingest_inputs(config, "bach", mirror)
    assert got == {"zips": [str(tegridy_dir / SMALL)], "folders": [str(folder)]}
    assert inputs.tegridy_zips(config, "jazz", mirror) == {SEEDS: str(tegridy_dir / SEEDS)}
    assert inputs.ingest_inputs(config, "base", mirror) == {"zips": [], "folders": []}
    # a mirror that lacks the zip: where rule fetch_tegridy downloads it
    config["tegridy"]["mirror"] = str(tmp_path)
    assert inputs.tegridy_zips(config, "bach", mirror) == {SMALL: f"resources/tegridy/{SMALL}"}
    config["tegridy"]["mirror"] = None
    assert inputs.ingest_inputs(config, "jazz", mirror)["zips"] == [f"resources/tegridy/{SEEDS}"]


def test_altered_mirror_zip_is_refused_naming_the_key(tmp_path, tegridy_dir):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    tampered(tegridy_dir / SMALL, mirror / SMALL)
    config = tegridy_config(mirror, tmp_path)
    with pytest.raises(ConfigError) as exc:
        inputs.ingest_inputs(config, "bach", VerifiedMirror())
    msg = str(exc.value)
    assert msg.startswith(f"config key tegridy.mirror: Tegridy zip {SMALL} at {mirror / SMALL}")
    assert "fails its checksum" in msg and catalogue()[SMALL].sha256 in msg
    assert "\n" not in msg


def test_mirror_zip_is_verified_once_per_size_and_mtime(tmp_path, tegridy_dir):
    copy = tmp_path / SMALL
    shutil.copyfile(tegridy_dir / SMALL, copy)
    mirror = VerifiedMirror()
    assert mirror.path(tmp_path, SMALL) == copy
    # Altered in place with its size and mtime kept: not hashed again (the check is cached)...
    st = copy.stat()
    tampered(tegridy_dir / SMALL, copy)
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert mirror.path(tmp_path, SMALL) == copy
    # ... a fresh process (a new VerifiedMirror) hashes it and refuses it,
    with pytest.raises(TegridyError, match="fails its checksum"):
        VerifiedMirror().path(tmp_path, SMALL)
    # and so does this one once the mtime moves.
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(TegridyError, match="fails its checksum"):
        mirror.path(tmp_path, SMALL)
    assert mirror.path(None, SMALL) is None
    assert mirror.path(tmp_path / "empty", SMALL) is None


@pytest.mark.parametrize("what", ["missing", "file"])
def test_dir_source_that_is_no_folder_names_its_key(tmp_path, tegridy_dir, what):
    path = tmp_path / "nowhere"
    if what == "file":
        path.write_bytes(b"MThd")
    config = tegridy_config(tegridy_dir, path)
    with pytest.raises(ConfigError) as exc:
        inputs.ingest_inputs(config, "bach", VerifiedMirror())
    why = "does not exist" if what == "missing" else "is a file, not a folder"
    assert str(exc.value) == f"config key corpora.bach.sources[1].dir.path: {path} {why}"


def test_ingest_listing_changes_with_the_folder(tmp_path, tegridy_dir):
    folder = tmp_path / "bach_midi"
    folder.mkdir()
    (folder / "a.mid").write_bytes(b"one")
    config = tegridy_config(tegridy_dir, folder)
    first = inputs.ingest_listing(config, "bach")
    assert first == inputs.ingest_listing(config, "bach")
    assert inputs.ingest_listing(config, "jazz") != first  # no folder: the empty listing
    (folder / "b.mid").write_bytes(b"two")
    assert inputs.ingest_listing(config, "bach") != first


def test_shards_and_target_files():
    config = filled({"shards": 2})
    assert inputs.shard_names(config) == ["0000", "0001"]
    assert inputs.shards_of(config, ["bach", "jazz"]) == [
        "results/tokens/bach/0000.h5",
        "results/tokens/bach/0001.h5",
        "results/tokens/jazz/0000.h5",
        "results/tokens/jazz/0001.h5",
    ]
    assert inputs.style_inputs(config) == {
        "tokenizer": "results/tokenizer/tokenizer.json",
        "shards": inputs.shards_of(config, ["base", "bach", "jazz"]),
        "splits": ["results/splits/base.tsv", "results/splits/bach.tsv", "results/splits/jazz.tsv"],
    }
    assert inputs.style_corpora(config)["jazz"] == [
        inputs.shards_of(config, ["jazz"]),
        "results/splits/jazz.tsv",
    ]


def test_generate_inputs_follow_the_walk_settings():
    config = filled({"shards": 1})
    gen = config["generate"]
    gen.update(context="onset", melody="none", form="none", prompt=None)
    out = inputs.generate_inputs(config, "small", "bach", "counts")
    assert out == {
        "tokenizer": "results/tokenizer/tokenizer.json",
        "successors": "results/graphs/bach/successors.npz",
        "shards": ["results/tokens/bach/0000.h5"],
        "split": "results/splits/bach.tsv",
        "context": "results/graphs/bach/context_successors.npz",
    }
    gen.update(context="none", melody="lines", prompt="p.mid")
    out = inputs.generate_inputs(config, "small", "bach", "emb_neighbours")
    assert "context" not in out
    assert out["walk"] == "results/graphs/bach/walk_tables.npz"
    assert out["nodes"] == "results/linkpred/small/bach/emb_neighbours/nodes.h5"
    assert out["prompt"] == "p.mid"


def test_baseline_inputs_follow_the_registry():
    config = filled({"shards": 1})
    markov = inputs.baseline_inputs(config, "small", "bach", "markov2")
    assert set(markov) == {"tokenizer", "shards", "split"}
    tuned = inputs.baseline_inputs(config, "small", "bach", "finetuned")
    assert tuned["model"] == "results/finetune/small/bach/hf"
    assert inputs.baseline_inputs(config, "small", "bach", "transformer")["model"] == (
        "results/models/small/hf"
    )
    assert inputs.baseline_inputs(config, "small", "jazz", "real_base")["base_shards"] == [
        "results/tokens/base/0000.h5"
    ]


def test_evaluate_and_figure_inputs_list_every_set():
    config = filled({"shards": 1})
    out = inputs.evaluate_inputs(config, "small", "bach")
    # walks first, then the baselines; finetuned only where the model is fine-tuned (bach)
    assert out["sets"] == [
        "results/generated/small/bach/counts/tokens.h5",
        "results/generated/small/bach/emb_neighbours/tokens.h5",
        "results/generated/small/bach/random/tokens.h5",
        "results/baselines/small/bach/markov2/tokens.h5",
        "results/baselines/small/bach/transformer/tokens.h5",
        "results/baselines/small/bach/finetuned/tokens.h5",
        "results/baselines/small/bach/real_target/tokens.h5",
    ]
    assert out["infos"] == [s.replace("tokens.h5", "generation.json") for s in out["sets"]]
    assert out["linkpred"] == [
        "results/linkpred/small/bach/emb_neighbours/metrics.json",
        "results/linkpred/small/bach/random/metrics.json",
    ]
    assert out["finetune"] == "results/finetune/small/bach/metrics.json"
    assert out["classifier"] == "results/style/classifier.json"
    jazz = inputs.evaluate_inputs(config, "small", "jazz")
    assert "finetune" not in jazz and len(jazz["sets"]) == 6
    fig = inputs.figure_inputs(config, "small", "jazz")
    assert fig["sets"] == jazz["sets"]
    assert fig["metrics"] == "results/eval/small/jazz/metrics.tsv"
    assert inputs.training_figure_inputs(config, "small") == {
        "pretrain": "results/models/small/training_log.tsv",
        "finetune": ["results/finetune/small/bach/training_log.tsv"],
    }


def test_fewshot_curve_inputs_one_folder_per_job_and_point():
    config = filled(
        {
            "fewshot": {
                "enabled": True,
                "ks": [1, 4],
                "draws": 2,
                "methods": ["markov2", "finetuned"],
                "variants": ["random"],
            }
        }
    )
    out = inputs.fewshot_curve_inputs(config, "small", "bach")
    base = "results/fewshot/small/bach/samples"
    assert out["points"] == [
        *(f"{base}/k{k}_d{d}" for k in (1, 4) for d in (0, 1)),
        *(f"{base}/k{k}_d{d}_finetuned" for k in (1, 4) for d in (0, 1)),
    ]
    assert out["transformer"] == "results/baselines/small/bach/transformer/tokens.h5"
    assert inputs.fewshot_targets(config) == [
        "results/fewshot/small/bach/curve.tsv",
        "results/fewshot/small/jazz/curve.tsv",
    ]


def test_all_targets_are_layout_paths():
    config = filled({"shards": 1})
    config["evaluate"]["figures"] = True
    config["report"]["audio"] = False
    targets = inputs.all_targets(config)
    assert targets[:3] == [L.token_index(c) for c in ("base", "bach", "jazz")]
    assert "results/linkpred/summary.tsv" in targets
    assert "results/generated/small/jazz/random/generation.json" in targets
    assert "results/eval/small/training.png" in targets
    assert "results/finetune/small/bach/metrics.json" in targets
    assert "results/finetune/small/jazz/metrics.json" not in targets
    config["report"]["audio"] = True
    audio = inputs.audio_targets(config)
    assert audio[0] == "results/eval/small/bach/audio/counts.flac"
    assert len(audio) == 7 + 6  # every set of bach (7) and of jazz (no finetuned: 6)
