"""Imported parameter and gradient norms: per-parameter columns → ``param_norm``, ``l2_norm`` their
root-sum-square, gradient norms kept as ``grad_norm``; ``--map`` overrides; ``dynamics`` works on them."""

import json

import pytest
from typer.testing import CliRunner

from grokscope.cli.main import app
from grokscope.errors import ConfigError
from grokscope.importers import parse_maps
from grokscope.importers.norm_fields import classify_norm
from grokscope.store.reader import RunStore

runner = CliRunner()
A = [3.0, 6.0, 5.0, 8.0, 20.0]  # with B, (A, B) are Pythagorean pairs: L2 = 5, 10, 13, 17, 29
B = [4.0, 8.0, 12.0, 15.0, 21.0]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def norms_csv(path, a="embed_parameter_norm", b="mlp_parameter_norm", extra=""):
    rows = [f"{s},{1 / (1 + s):.6g},{acc},{x},{y}{extra and ',0.5'}"
            for s, acc, x, y in zip((0, 10, 20, 30, 40), (0.0, 0.2, 0.5, 0.96, 1.0), A, B)]
    path.write_text(f"step,train_loss,test_acc,{a},{b}{extra and ',' + extra}\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("field, key", [
    ("embed_parameter_norm", "param_norm:embed"), ("blocks.0.mlp_param_norm", "param_norm:blocks.0.mlp"),
    ("embed.weight/weight_norm", "param_norm:embed.weight"), ("embedParamNorm", "param_norm:embed"),
    ("norm/unembed", "param_norm:unembed"), ("param_norm/layers.1", "param_norm:layers.1"),
    ("grad_norm", "grad_norm"), ("train/grad_norm", "grad_norm"), ("gradient_norm", "grad_norm"),
    ("mlp_grad_norm", "grad_param_norm:mlp"), ("grad_norm/embed", "grad_param_norm:embed"),
    ("total_weight_norm", "l2_norm"), ("weight_norm", None), ("layer_norm", None), ("lr", None),
])
def test_norm_field_rule(field, key):
    assert classify_norm(field) == key


def test_per_parameter_norms_become_param_norm_and_their_root_sum_square(tmp_path):
    result = run("import", norms_csv(tmp_path / "m.csv", extra="grad_norm"), "--out", tmp_path / "m.zarr",
                 "--json")
    assert result.exit_code == 0, result.stderr
    (entry,) = json.loads(result.stdout)["runs"]
    assert entry["mapped"]["param_norm:embed"] == "embed_parameter_norm" and entry["dropped"] == []
    store = RunStore(tmp_path / "m.zarr")
    assert store.read("param").tolist() == ["embed", "mlp"]
    assert store.read("param_norm").tolist() == [list(p) for p in zip(A, B)]
    assert store.read("l2_norm").tolist() == [5.0, 10.0, 13.0, 17.0, 29.0]  # exactly √(a² + b²)
    assert store.read("grad_norm").tolist() == [0.5] * 5
    assert store.attrs["import"]["derived"] == {"l2_norm": {"from": "param_norm", "params": ["embed", "mlp"]}}
    dyn = run("dynamics", tmp_path / "m.zarr", "--json", "--no-save", "--train-loss-below", "0.1")
    assert dyn.exit_code == 0, dyn.stderr
    (row,) = json.loads(dyn.stdout)
    assert row["generalization_step"] == 30 and row["w_star"] == 17.0
    assert row["layers"] == {"embed": {"initial": 3.0, "final": 20.0}, "mlp": {"initial": 4.0, "final": 21.0}}


def test_map_points_columns_at_parameters_and_totals(tmp_path):
    src = norms_csv(tmp_path / "m.csv", a="wq", b="total")
    result = run("import", src, "--out", tmp_path / "m.zarr", "--map", "param_norm:attn.q=wq",
                 "--map", "l2_norm=total", "--json")
    assert result.exit_code == 0, result.stderr
    store = RunStore(tmp_path / "m.zarr")
    assert store.read("param").tolist() == ["attn.q"] and store.read("param_norm")[:, 0].tolist() == A
    assert store.read("l2_norm").tolist() == B and store.attrs["import"]["derived"] == {}  # logged total kept


def test_bad_norm_maps_and_ambiguous_columns(tmp_path, assert_one_line_error):
    with pytest.raises(ConfigError, match="param_norm:<parameter>"):
        parse_maps(["param_norm:=x"])
    assert parse_maps(["grad_param_norm:embed=g"]) == {"grad_param_norm:embed": "g"}
    src = norms_csv(tmp_path / "m.csv", a="embed_param_norm", b="embed_weight_norm")
    assert_one_line_error(run("import", src, "--out", tmp_path / "m.zarr"), "look like param_norm:embed",
                          "--map param_norm:embed=FIELD")
    assert not (tmp_path / "m.zarr").exists()


@pytest.mark.parametrize("field, key", [
    ("fc.weight_norm", "param_norm:fc.weight"),  # PyTorch names keep their dots: weight and bias apart
    ("fc.bias_norm", "param_norm:fc.bias"),
    ("blocks.0.mlp_param_norm", "param_norm:blocks.0.mlp"),
    ("grad_norm/step", "grad_norm"),  # logging qualifiers (Composer, Lightning) are not parameters
    ("grad_l2_norm/step", "grad_norm"),
    ("grad_norm_step", "grad_norm"),
    ("grad_norm/epoch", "grad_norm"),
    ("grad_2.0_norm_total", "grad_norm"),  # Lightning's grad_norm(norm_type=2) keys
    ("grad_2.0_norm/fc.weight", "grad_param_norm:fc.weight"),
    ("weight_norm/total", "l2_norm"),
    ("grad_norm/max", None),  # another statistic
    ("val_grad_norm", None),  # a split, not a parameter: left unmapped (listed as dropped)
])
def test_norm_names_other_tools_log(field, key):
    assert classify_norm(field) == key


def test_dotted_weight_and_bias_norms_add_up_to_the_total(tmp_path):
    src = tmp_path / "m.csv"
    src.write_text("step,train_loss,test_acc,fc.weight_norm,fc.bias_norm,head.weight_norm\n"
                   "0,1.0,0.1,3,4,12\n10,0.5,0.9,6,8,0\n")
    result = CliRunner().invoke(app, ["import", str(src), "--out", str(tmp_path / "m.zarr")])
    assert result.exit_code == 0, result.stderr
    store = RunStore(tmp_path / "m.zarr")
    assert list(store.read("param")) == ["fc.weight", "fc.bias", "head.weight"]
    assert store.read("l2_norm").tolist() == [13.0, 10.0]
