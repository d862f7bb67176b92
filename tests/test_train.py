"""brainsr.train: the training loop, critic, checkpoints and resume, self-describing model files (paper 3.3-3.5)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.ndimage import uniform_filter

from brainsr.data import ScanPair
from brainsr.models.files import ModelFileError, load_model_file, save_model_file
from brainsr.models.unet import UNet
from brainsr.train.report import validation_table
from brainsr.train.settings import TrainSettings, autocast_dtype
from brainsr.train.trainer import StopTraining, train_experiment

META = {"prep": "affinelinear", "sequences": ["T1w", "T2w", "FLAIR"], "grid_shape": [20, 24, 10]}


def _pair(subject: str, seed: int) -> ScanPair:
    """A 'research' volume and its 'clinical' version: blurred across slices (thick slices) and darker."""
    rng = np.random.default_rng(seed)
    y = np.zeros((3, 20, 24, 10), np.float32)
    y[:, 3:17, 4:20, 1:9] = uniform_filter(rng.random((3, 14, 16, 8)), (1, 2, 2, 1)).astype(np.float32)
    x = (0.8 * uniform_filter(y, (1, 1, 1, 5))).astype(np.float32)
    return ScanPair(subject, x, y, np.eye(4))


TRAIN = [_pair("A", 1), _pair("B", 2)]
VAL = [_pair("C", 3)]


def _settings(**over: object) -> TrainSettings:
    base = {"filters": 4, "depth": 2, "epochs": 3, "batch_size": 4, "critic_filters": 4, "critic_steps": 2}
    return TrainSettings.from_mapping({**base, **over})


def _train(tmp_path, name: str, settings: TrainSettings, **kw: object) -> dict:
    d = tmp_path / name
    return train_experiment(
        settings,
        TRAIN,
        VAL,
        out_model=d / "model.pt",
        out_history=d / "history.tsv",
        work_dir=d / "work",
        data_meta=META,
        progress=False,
        tensorboard=kw.pop("tensorboard", False),
        **kw,
    )


def test_training_reduces_the_loss(tmp_path):
    summary = _train(tmp_path, "run", _settings(epochs=6, loss="mae+ssim", lr=3e-3), tensorboard=True)
    history = pd.read_csv(tmp_path / "run" / "history.tsv", sep="\t")
    assert list(history.epoch) == [1, 2, 3, 4, 5, 6]
    assert history.train_loss.iloc[-1] < 0.9 * history.train_loss.iloc[0]
    assert history.val_loss.iloc[-1] < history.val_loss.iloc[0]
    assert summary["best_epoch"] == int(history.val_loss.idxmin()) + 1
    for column in ("train_mae", "train_ssim", "train_critic_loss", "val_psnr", "val_ssim", "val_critic_real", "lr"):
        assert history[column].notna().all(), column
    assert 0 <= history.val_critic_fake.min() and history.val_critic_real.max() <= 1
    assert history.lr.iloc[-1] < history.lr.iloc[0]  # cosine schedule
    assert list((tmp_path / "run" / "work" / "tensorboard").glob("events.out.tfevents.*"))
    assert (tmp_path / "run" / "model.json").is_file()


def test_kill_and_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path):
    settings = _settings(critic_lambda=0.2, dropout=0.1)
    _train(tmp_path, "straight", settings)

    def kill_after_first(epoch: int, _row: dict) -> None:
        if epoch == 1:
            raise StopTraining

    with pytest.raises(StopTraining):
        _train(tmp_path, "killed", settings, on_epoch_end=kill_after_first)
    assert not (tmp_path / "killed" / "model.pt").exists()  # no partial output
    assert len(pd.read_csv(tmp_path / "killed" / "work" / "history.tsv", sep="\t")) == 1
    epochs_run = []
    _train(tmp_path, "killed", settings, on_epoch_end=lambda e, _r: epochs_run.append(e))
    assert epochs_run == [2, 3]  # resumed after the checkpoint of epoch 1
    a = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "model.pt", weights_only=True)
    for part in ("state_dict", "critic_state_dict"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    ha = pd.read_csv(tmp_path / "straight" / "history.tsv", sep="\t")
    hb = pd.read_csv(tmp_path / "killed" / "history.tsv", sep="\t")
    pd.testing.assert_frame_equal(
        ha.drop(columns=["seconds", "samples_per_s"]), hb.drop(columns=["seconds", "samples_per_s"])
    )


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    _train(tmp_path, "run", _settings(epochs=2))
    seen = []
    _train(tmp_path, "run", _settings(epochs=2, lr=5e-4), on_epoch_end=lambda e, _r: seen.append(e))
    assert seen == [1, 2]


@pytest.mark.parametrize(
    "over",
    [
        {"model": "unet", "critic": False},
        {"model": "vit", "critic": False, "vit": {"patch_size": 4, "embed_dim": 16, "depth": 1, "heads": 2}},
        {"channels": "single", "critic_lambda": 0.1},
        {"input": "patches", "patch_size": 8, "patches_per_scan": 12, "loss": "0.5*mse+0.5*bce"},
        {"input": "patches", "channels": "single", "critic_lambda": 0.1, "patch_size": 8, "patches_per_scan": 12},
        {"precision": "fp32", "channels_last": False},
    ],
)
def test_every_experiment_kind_trains(tmp_path, over):
    summary = _train(tmp_path, "run", _settings(epochs=1, **over))
    loaded = load_model_file(tmp_path / "run" / "model.pt", expect={"prep": "affinelinear"})
    assert summary["parameters"] == sum(p.numel() for p in loaded.generator.parameters())
    assert loaded.meta["data"]["channels_mode"] == over.get("channels", "multi")
    assert (loaded.critic is not None) == over.get("critic", True)
    assert np.isfinite(summary["val_loss"])


def test_settings_are_checked():
    with pytest.raises(ValueError, match="unknown experiment setting"):
        TrainSettings.from_mapping({"filtres": 8})
    with pytest.raises(ValueError, match="needs critic"):
        TrainSettings.from_mapping({"critic": False, "critic_lambda": 0.1})
    with pytest.raises(ValueError, match="model must be one of"):
        TrainSettings.from_mapping({"model": "identity"})
    assert autocast_dtype("fp32") is None
    assert autocast_dtype("bf16") == torch.bfloat16


def test_auto_precision_is_measured_recorded_and_kept_on_resume(tmp_path, monkeypatch):
    """``auto`` on a CPU: the probe decides (here told that bf16 is twice as fast), the model file and its summary
    record the choice, and the checkpoint fingerprint holds it (a resumed run cannot switch modes)."""
    import brainsr.train.precision as precision

    monkeypatch.setenv("BRAINSR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(precision, "probe_seconds", lambda *a, **k: {"fp32": 1.0, "bf16": 0.5})
    summary = _train(tmp_path, "run", _settings(epochs=1, precision="auto"))
    assert summary["precision"] == "bf16" and summary["precision_reason"] == "probe"
    assert summary["autocast"] == "torch.bfloat16"
    loaded = load_model_file(tmp_path / "run" / "model.pt", expect={"prep": "affinelinear"})
    assert loaded.meta["training"]["precision_choice"]["seconds"] == {"fp32": 1.0, "bf16": 0.5}
    assert json.loads((tmp_path / "run" / "model.json").read_text())["precision"] == "bf16"


def test_model_file_mismatches_fail_loudly(tmp_path):
    kwargs = {"in_channels": 3, "out_channels": 3, "filters": 4, "depth": 2}
    path = save_model_file(
        tmp_path / "m.pt", generator=UNet(**kwargs), model_name="unet", model_kwargs=kwargs, data=META
    )
    assert isinstance(load_model_file(path).generator, UNet)
    with pytest.raises(ModelFileError, match="trained with prep='affinelinear', but 'rigidlinear' is required"):
        load_model_file(path, expect={"prep": "rigidlinear"})
    # weights of another architecture under the same record
    payload = torch.load(path, weights_only=True)
    payload["model"]["name"] = "attention_unet"
    torch.save(payload, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match=r"other\.pt: the weights do not fit .*attention_unet"):
        load_model_file(tmp_path / "other.pt")
    payload["model"] = {"name": "unet", "kwargs": {**kwargs, "filters": 8}}
    torch.save(payload, tmp_path / "wider.pt")
    with pytest.raises(ModelFileError, match="do not fit"):
        load_model_file(tmp_path / "wider.pt")
    torch.save(UNet(**kwargs).state_dict(), tmp_path / "raw.pt")
    with pytest.raises(ModelFileError, match=r"raw\.pt: not a brainsr-model file"):
        load_model_file(tmp_path / "raw.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(ModelFileError, match=r"junk\.pt: not a readable"):
        load_model_file(tmp_path / "junk.pt")
    with pytest.raises(ModelFileError, match="not found"):
        load_model_file(tmp_path / "missing.pt")


def test_validation_table(tmp_path):
    _train(tmp_path, "model0", _settings(epochs=1))
    table = validation_table([tmp_path / "model0" / "model.json"], {"model0": {"filters": 4, "depth": 2}})
    assert table.experiment.tolist() == ["model0"]
    assert {"model", "prep", "parameters", "best_epoch", "val_mae", "val_mae_input", "val_ssim"} <= set(table)
    with pytest.raises(ValueError, match="not in the configuration"):
        validation_table([tmp_path / "model0" / "model.json"], {})


def test_samples_per_epoch_bounds_the_cost_of_an_epoch(tmp_path):
    """``samples_per_epoch``: that many samples per epoch, each epoch its own seeded draw; null: every sample."""
    from brainsr.train.trainer import _epoch_loader, build_datasets

    settings = _settings(epochs=2, samples_per_epoch=5, batch_size=2)
    train_ds, _, _ = build_datasets(settings, TRAIN, VAL)
    assert len(train_ds) > 5
    summary = _train(tmp_path, "run", settings)
    history = pd.read_csv(tmp_path / "run" / "history.tsv", sep="\t")
    assert history["samples"].tolist() == [5, 5] and summary["samples"] == len(train_ds)

    def drawn(epoch: int) -> list[int]:
        return list(iter(_epoch_loader(train_ds, settings, epoch).sampler))

    assert drawn(0) == drawn(0) and drawn(0) != drawn(1) and len(set(drawn(0))) == 5
    every = _train(tmp_path, "all", _settings(epochs=1, batch_size=2))
    assert pd.read_csv(tmp_path / "all" / "history.tsv", sep="\t")["samples"].tolist() == [every["samples"]]
    with pytest.raises(ValueError, match="samples_per_epoch must be >= 1"):
        TrainSettings.from_mapping({"samples_per_epoch": 0})


def test_val_samples_is_a_fixed_evenly_spaced_validation_sample():
    """``val_samples``: at most that many validation samples, evenly spaced from the first to the last, the same
    ones on every call; null or a larger number: every sample."""
    from brainsr.train.trainer import build_datasets

    _, every, _ = build_datasets(_settings(), TRAIN, VAL)
    n = len(every)
    assert n > 4
    _, capped, _ = build_datasets(_settings(val_samples=4), TRAIN, VAL)
    step = (n - 1) / 3
    assert capped.indices == [round(i * step) for i in range(4)] and capped.indices[-1] == n - 1
    assert all(torch.equal(capped[i][1], every[j][1]) for i, j in enumerate(capped.indices))
    _, again, _ = build_datasets(_settings(val_samples=4), TRAIN, VAL)
    assert again.indices == capped.indices
    assert len(build_datasets(_settings(val_samples=n + 5), TRAIN, VAL)[1]) == n
    patches = _settings(input="patches", patch_size=8, patches_per_scan=20, val_samples=3)
    assert len(build_datasets(patches, TRAIN, VAL)[1]) == 3
    with pytest.raises(ValueError, match="val_samples must be >= 1"):
        TrainSettings.from_mapping({"val_samples": 0})
