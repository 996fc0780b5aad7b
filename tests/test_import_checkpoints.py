"""PyTorch and safetensors checkpoints → the store's checkpoint arrays (read with RunStore.read_param)."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from grokscope.cli.main import app
from grokscope.importers import SourceError, read_source, write_source
from grokscope.store.reader import RunStore, open_checkpoints
from grokscope.trainers.checkpoints import read_torch

runner = CliRunner()


@dataclasses.dataclass
class NandaConfig:  # a pickled config object, as in Nanda et al.'s files
    p: int = 11
    frac_train: float = 0.3


def state(k, d_model=16, d_vocab=12):
    """A Nanda-layout state dict whose every entry is known: W_E filled with k, mask a bool buffer."""
    return {"embed.W_E": torch.full((d_model, d_vocab), float(k)),  # (d_model, d_vocab): Nanda's original
            "unembed.W_U": torch.arange(d_model * d_vocab, dtype=torch.float32).reshape(d_model, d_vocab) + k,
            "blocks.0.mlp.b_in": torch.full((4,), 0.5 * k, dtype=torch.float64),
            "blocks.0.attn.mask": torch.ones(3, 3, dtype=torch.bool),
            "blocks.0.attn.IGNORE": torch.tensor(-1e5)}  # a float buffer: stored, but not a weight


def l2(k, d_model=16, d_vocab=12):
    """The weight norm of ``state(k)``: W_E, W_U and b_in (buffers excluded)."""
    w_u = np.arange(d_model * d_vocab, dtype=np.float64) + k
    return np.sqrt(d_model * d_vocab * k**2 + (w_u**2).sum() + 4 * (0.5 * k) ** 2)


def test_three_checkpoints_read_back_with_read_param(tmp_path):
    torch.save([{"epoch": e, "model": state(i)} for i, e in enumerate((0, 100, 250))], tmp_path / "ckpts.pth")
    result = runner.invoke(app, ["import", str(tmp_path / "ckpts.pth"), "--out", str(tmp_path / "c.zarr"),
                                 "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["runs"][0]["n_checkpoints"] == 3
    store = RunStore(tmp_path / "c.zarr")
    assert store.checkpoint_steps().tolist() == [0, 100, 250]
    assert store.param_names() == ["blocks.0.attn.IGNORE", "blocks.0.mlp.b_in", "embed.W_E",
                                   "unembed.W_U"]  # the bool buffer is dropped
    for i in range(3):
        np.testing.assert_array_equal(store.read_param("unembed.W_U", i), state(i)["unembed.W_U"].numpy())
        assert store.read_param("blocks.0.mlp.b_in", i).dtype == np.float32
    assert store.read_param("embed.W_E").shape == (3, 16, 12)
    assert store.attrs["import"]["checkpoint_dropped"] == ["blocks.0.attn.mask"]
    assert store.attrs["import"]["checkpoint_steps_from"] == "epoch/step keys"
    # no l2_norm logged: the weight norm at each checkpoint, as the trainer logs it (buffers left out)
    assert store.read("step").tolist() == [0, 100, 250]
    np.testing.assert_allclose(store.read("l2_norm"), [l2(0), l2(1), l2(2)], rtol=1e-12)
    assert store.attrs["import"]["derived"] == {"l2_norm": {"from": "checkpoints",
                                                            "left_out": ["blocks.0.attn.IGNORE"]}}
    assert open_checkpoints(tmp_path / "c.zarr")["embed.W_E"].dims == ("ckpt", "vocab", "d_model")


def test_nanda_file_histories_checkpoints_config_and_orientation(tmp_path):
    losses = [4.0] * 7 + [0.1] * 23  # memorized (train loss <= 0.5) at step 7
    test_losses = [5.0] * 24 + [0.4] * 6  # generalized (test loss <= 0.5) at step 24
    torch.save({"model": state(9), "config": {"p": 11, "frac_train": 0.3},
                "checkpoints": [state(0), state(1), state(2)], "checkpoint_epochs": [0, 10, 20],
                "train_losses": losses, "test_losses": test_losses,
                "train_indices": list(range(40)), "test_indices": list(range(81))}, tmp_path / "full_run.pth")
    write_source(read_torch(tmp_path / "full_run.pth"), tmp_path / "n.zarr")
    store = RunStore(tmp_path / "n.zarr")
    assert store.read("step").tolist() == list(range(31))  # histories 0…29, final model at 30
    np.testing.assert_array_equal(store.read("train_loss")[:30], losses)
    l2_norm = store.read("l2_norm")
    np.testing.assert_allclose(l2_norm[[0, 10, 20, 30]], [l2(0), l2(1), l2(2), l2(9)], rtol=1e-12)
    assert np.isnan(np.delete(l2_norm, [0, 10, 20, 30])).all()
    assert store.checkpoint_steps().tolist() == [0, 10, 20, 30]  # the final model: after 30 updates
    assert store.read_param("embed.W_E", 3)[0, 0] == 9.0
    # p = 11 tells the vocab axis (12 = p + 1) from d_model (16), although d_model is the larger one
    assert store.attrs["model"]["param_roles"] == {
        "embedding": "embed.W_E", "embedding_orientation": "vocab_last", "unembedding": "unembed.W_U"}
    assert store.config["n_train"] == 40 and store.config["frac"] == 0.3 and store.config["p"] == 11
    rows = json.loads(runner.invoke(app, ["analyze", str(tmp_path / "n.zarr"), "--json",
                                          "--train-loss-below", "0.5", "--test-loss-below", "0.5"]).stdout)
    assert rows[0]["memorization_step"] == 7 and rows[0]["generalization_step"] == 24


def test_transformerlens_vocab_first_and_a_bare_state_dict(tmp_path):
    torch.save({"embed.W_E": torch.ones(12, 16), "pos_embed.W_pos": torch.ones(3, 16)}, tmp_path / "tl.pt")
    written = write_source(read_torch(tmp_path / "tl.pt"), tmp_path / "tl.zarr", hparams={"p": 11})
    store = RunStore(written["out"])
    assert store.attrs["model"]["param_roles"]["embedding_orientation"] == "vocab_first"
    assert store.checkpoint_steps().tolist() == [0] and store.read("step").tolist() == [0]
    assert store.read("l2_norm").tolist() == [np.sqrt(12 * 16 + 3 * 16)]
    assert store.attrs["import"]["checkpoint_steps_from"] == "unknown (0)"


def test_pickled_class_needs_trust_pickle(tmp_path):
    path = tmp_path / "cfg.pth"
    torch.save({"model": state(1), "config": NandaConfig()}, path)
    refused = runner.invoke(app, ["import", str(path), "--out", str(tmp_path / "x.zarr")])
    assert refused.exit_code == 2 and not (tmp_path / "x.zarr").exists()
    line = refused.stderr.strip()
    assert "\n" not in line and "cfg.pth" in line and "--trust-pickle" in line and "NandaConfig" in line
    accepted = runner.invoke(app, ["import", str(path), "--out", str(tmp_path / "x.zarr"), "--trust-pickle"])
    assert accepted.exit_code == 0, accepted.stderr
    assert RunStore(tmp_path / "x.zarr").config["p"] == 11


def test_safetensors_file_and_folder_of_checkpoints(tmp_path):
    from safetensors.numpy import save_file

    folder = tmp_path / "ckpts"
    folder.mkdir()
    for step in (300, 100, 200):
        save_file({"embed.weight": np.full((12, 4), step, dtype=np.float32),
                   "position_ids": np.arange(3, dtype=np.int64)}, folder / f"step_{step}.safetensors")
    (folder / "config.json").write_text('{"modulus": 11, "train_fraction": 0.5}')
    write_source(read_source(folder), tmp_path / "s.zarr")
    store = RunStore(tmp_path / "s.zarr")
    assert store.checkpoint_steps().tolist() == [100, 200, 300]
    assert store.read_param("embed.weight")[:, 0, 0].tolist() == [100.0, 200.0, 300.0]
    assert store.config == {"modulus": 11, "train_fraction": 0.5, "p": 11, "frac": 0.5}
    assert store.attrs["model"]["param_roles"] == {"embedding": "embed.weight",
                                                   "embedding_orientation": "vocab_first"}
    write_source(read_source(folder / "step_200.safetensors"), tmp_path / "one.zarr")
    assert RunStore(tmp_path / "one.zarr").checkpoint_steps().tolist() == [200]


def test_inconsistent_checkpoints_name_the_tensor(tmp_path):
    torch.save([state(0), state(1, d_model=8)], tmp_path / "bad.pth")
    with pytest.raises(SourceError, match=r"item 1\]: tensor 'embed.W_E' has shape \(8, 12\)"):
        read_torch(tmp_path / "bad.pth")


@pytest.mark.parametrize("fields, relative, step", [
    ({"global_step": 1200, "epoch": 3}, "epoch=3.ckpt", 1200),  # Lightning: global_step before epoch and file name
    ({"step": "12"}, "model-99.safetensors", 12),  # safetensors metadata holds strings
    ({"step": True}, "ckpt_40.pt", 40),  # a bool is no step: the file name decides
    ({}, "run/checkpoint-500/model.safetensors", 500),  # the last number of the path below the imported folder
    ({}, "final.pt", None),
])
def test_one_rule_reads_a_checkpoint_step_for_torch_and_safetensors_files(fields, relative, step):
    from grokscope.importers.params import checkpoint_step

    assert checkpoint_step(fields, relative) == step
