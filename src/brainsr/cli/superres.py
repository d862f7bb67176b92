"""``brainsr train``, ``brainsr infer``, ``brainsr upsample`` and ``brainsr superres-table`` (called by
workflow/rules/superres.smk; ``upsample`` is the user's command)."""

from __future__ import annotations

import argparse
import json
import logging

from brainsr.cli.args import json_object, key_value_pairs

log = logging.getLogger("brainsr")


def cmd_train(args: argparse.Namespace) -> int:
    """Train one experiment (generator + critic); resumes from the checkpoint in --work-dir when it fits."""
    from brainsr.base.images import scoped_tmpdir

    with scoped_tmpdir(prefix="brainsr-train-"):  # torch's compile caches go there and are removed afterwards
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    """``brainsr train`` inside its temporary folder."""
    from brainsr.train.spec import train_from_spec

    summary = train_from_spec(
        args.spec_json,
        out_model=args.out_model,
        out_history=args.out_history,
        work_dir=args.work_dir,
        device=args.device,
        tensorboard=not args.no_tensorboard,
        progress=not args.no_progress,
    )
    log.info("trained: %s", json.dumps(summary, default=str))
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    """Upsample one scan set with a model file (or the identity baseline); native-space copies; explain maps."""
    from brainsr.base.images import scoped_tmpdir

    with scoped_tmpdir(prefix="brainsr-infer-"):  # torch's compile caches go there and are removed afterwards
        return _infer(args)


def _infer(args: argparse.Namespace) -> int:
    """``brainsr infer`` inside its temporary folder."""
    from brainsr.infer.scans import infer_scan

    images, out = key_value_pairs(args.image, "--image"), key_value_pairs(args.out, "--out")
    if set(images) != set(out):
        raise ValueError(f"--image sequences {sorted(images)} and --out sequences {sorted(out)} differ")
    native = args.native_json or None
    info = infer_scan(
        images=images,
        out=out,
        model=args.model,
        mask=args.mask,
        expect={"prep": args.expect_prep} if args.expect_prep else None,
        native=native,
        out_native=key_value_pairs(args.out_native, "--out-native") or None,
        explain=args.explain,
        target=key_value_pairs(args.target, "--target") or None,
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        compile=args.compile,
    )
    log.info("%s: %s", args.model, json.dumps(info["seconds"]))
    return 0


def cmd_superres_table(args: argparse.Namespace) -> int:
    """Table of every experiment's settings and best validation metrics."""
    from brainsr.io import atomic_write_tsv
    from brainsr.train.report import validation_table

    atomic_write_tsv(validation_table(args.summary, args.experiments_json), args.out, float_format="%.6g")
    return 0


def cmd_upsample(args: argparse.Namespace) -> int:
    """One clinical scan set through a trained model: preprocessing, upsampling, outputs on both grids, QC."""
    from brainsr.config import load_config, validate_config
    from brainsr.infer.upsample import resolve_model, upsample_scans

    cfg = load_config(*args.configfile) if args.configfile else validate_config({})
    images = {q: p for q, p in (("T1w", args.t1w), ("T2w", args.t2w), ("FLAIR", args.flair)) if p}
    result = upsample_scans(
        images,
        resolve_model(args.model, args.results),
        args.out,
        preprocess=cfg["preprocess"],
        subject=args.subject,
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
    )
    width = max(len(k) for k in result.seconds)
    print("time per step:")
    for step, sec in result.seconds.items():
        print(f"  {step:<{width}}  {sec:8.1f} s")
    print(f"  {'total':<{width}}  {sum(result.seconds.values()):8.1f} s")
    for kind, path in result.outputs.items():
        if "json" not in kind:
            print(f"{kind:>16}: {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``brainsr train``, ``brainsr infer``, ``brainsr upsample`` and ``brainsr superres-table``."""
    q = sub.add_parser("train", help="train one super-resolution experiment (paper 3.3-3.5)")
    q.add_argument(
        "--spec-json",
        required=True,
        type=json_object,
        help="experiment settings and subjects as JSON (inline or @file)",
    )
    q.add_argument("--out-model", required=True, help="best-on-validation model file (.pt)")
    q.add_argument("--out-history", required=True, help="per-epoch history (TSV)")
    q.add_argument("--work-dir", required=True, help="checkpoint + TensorBoard folder (kept across reruns)")
    q.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    q.add_argument("--no-tensorboard", action="store_true")
    q.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    q.set_defaults(func=cmd_train)

    q = sub.add_parser("infer", help="upsample one template-space scan set with a trained model (paper 3.6)")
    q.add_argument("--model", required=True, help="model file, or 'identity' for the interpolation baseline")
    q.add_argument("--image", nargs="+", required=True, metavar="SEQ=PATH", help="template-space inputs")
    q.add_argument("--out", nargs="+", required=True, metavar="SEQ=PATH", help="template-space outputs")
    q.add_argument("--mask", help="clinical brain mask on the template grid (outputs are zero outside it)")
    q.add_argument("--expect-prep", help="fail unless the model was trained on this preprocessing variant")
    q.add_argument(
        "--native-json", type=json_object, help="per sequence {reference, transforms, invert} for native-space copies"
    )
    q.add_argument("--out-native", nargs="*", metavar="SEQ=PATH", help="native-space outputs")
    q.add_argument("--explain", help="NPZ with attention masks and Grad-CAM of three slices")
    q.add_argument("--target", nargs="*", metavar="SEQ=PATH", help="research scans (Grad-CAM of the target)")
    q.add_argument("--device", default="auto")
    q.add_argument("--batch-size", type=int, default=16)
    q.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    q.add_argument("--compile", action="store_true", help="torch.compile the generator (faster on long runs)")
    q.set_defaults(func=cmd_infer)

    q = sub.add_parser(
        "upsample",
        help="upsample one patient's clinical T1w, T2w and FLAIR with a trained model (preprocessing included)",
    )
    q.add_argument("--model", required=True, help="model file, or an experiment name of a workflow run (see --results)")
    q.add_argument("--t1w", help="clinical T1w: NIfTI file or DICOM series folder")
    q.add_argument("--t2w", help="clinical T2w: NIfTI file or DICOM series folder")
    q.add_argument("--flair", help="clinical FLAIR: NIfTI file or DICOM series folder")
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--subject", default="01", help="subject label of the output names (sub-<label>_...)")
    q.add_argument("--results", default="results", help="results folder of the run that trained --model <name>")
    q.add_argument(
        "--configfile", nargs="*", default=[], help="the training run's config file(s): template, grids, extraction"
    )
    q.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    q.add_argument("--batch-size", type=int, default=16)
    q.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    q.set_defaults(func=cmd_upsample)

    q = sub.add_parser("superres-table", help="settings and validation metrics of every trained experiment")
    q.add_argument("--summary", nargs="*", default=[], help="<experiment>/model.json files")
    q.add_argument("--experiments-json", required=True, type=json_object, help="the experiments' settings")
    q.add_argument("--out", required=True, help="output TSV")
    q.set_defaults(func=cmd_superres_table)
