"""The whole preprocessing of one session in one call (paper 3.1): the chain the workflow's rule, ``brainsr
upsample`` and ``benchmarks/preprocess.py`` all run.

Steps (each in :mod:`brainsr.preprocess.pipeline`): bias correction + brain extraction, the template transforms
the requested preps need (each estimated once, in dependency order) with FLIRT-convention copies of the linear
ones (:mod:`brainsr.preprocess.flirt`), then every prep on the analysis grid, then the session's alignment QC
figure and table. Names come from :class:`~brainsr.preprocess.layout.PrepLayout`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from brainsr.preprocess.layout import SETTING_KEYS, PrepLayout, intensity_settings, prep_spec, session_keys
from brainsr.preprocess.pipeline import (
    prepare_session,
    register_keys,
    resample_session,
)

__all__ = ["SETTING_KEYS", "preprocess_session", "session_keys"]

log = logging.getLogger("brainsr.preprocess")


def _timed(seconds: dict[str, float], step: str, start: float) -> None:
    seconds[step] = round(time.perf_counter() - start, 2)
    log.info("%s: %.1f s", step, seconds[step])


def _register_all(
    layout: PrepLayout, ids: tuple[str, str], keys: Sequence[str], pre: Mapping[str, Any], template: Sequence[str]
) -> dict[str, float]:
    infos = register_keys(
        layout.brain(*ids, "T1w"),
        layout.mask(*ids),
        template[0],
        template[1],
        transforms={k: (layout.tpl_xfm(*ids, k), layout.tpl_xfm(*ids, k, inverse=True)) for k in keys},
        level_mm=float(pre["level_mm"]),
        syn_iterations=tuple(pre["syn_iterations"]),
    )
    seconds = {f"register {key}": round(float(info["seconds"]), 2) for key, info in infos.items()}
    for step, sec in seconds.items():
        log.info("%s: %.1f s", step, sec)
    return seconds


def _write_flirt(layout: PrepLayout, ids: tuple[str, str], keys: Sequence[str], template: str) -> None:
    """FLIRT-convention copies of the session's linear transforms (sequence -> T1w, T1w -> template)."""
    from brainsr.preprocess.flirt import write_flirt

    t1w = layout.brain(*ids, "T1w")
    for seq in layout.sequences[1:]:
        write_flirt(layout.seq_xfm(*ids, seq), layout.brain(*ids, seq), t1w, layout.flirt(*ids, seq=seq))
    for key in keys:
        if key != "warp":
            write_flirt(layout.tpl_xfm(*ids, key), t1w, template, layout.flirt(*ids, key=key))


def _resample_all(
    layout: PrepLayout, ids: tuple[str, str], preps: Sequence[str], pre: Mapping[str, Any], template: str
) -> dict[str, float]:
    seconds: dict[str, float] = {}
    seqs = layout.sequences
    for prep in preps:
        start = time.perf_counter()
        key, interpolation = prep_spec(prep, pre)
        resample_session(
            {q: layout.brain(*ids, q) for q in seqs},
            layout.mask(*ids),
            template,
            layout.tpl_xfm(*ids, key),
            {q: layout.seq_xfm(*ids, q) for q in seqs[1:]},
            interpolation=interpolation,
            intensity=intensity_settings(pre),
            out_images={q: layout.image(*ids, prep, q) for q in seqs},
            out_mask=layout.image_mask(*ids, prep),
            prep=prep,
        )
        _timed(seconds, f"resample {prep} ({interpolation})", start)
    return seconds


def _qc(layout: PrepLayout, ids: tuple[str, str], preps: Sequence[str], primary: str, template: Sequence[str]) -> None:
    from brainsr.preprocess.report import session_qc

    shown = primary if primary in preps else preps[0]
    session_qc(
        images={p: {q: layout.image(*ids, p, q) for q in layout.sequences} for p in preps},
        masks={p: layout.image_mask(*ids, p) for p in preps},
        template=template[0],
        template_mask=template[1],
        native_mask=layout.mask(*ids),
        primary=shown,
        title=f"sub-{ids[0]} ses-{ids[1]}: {shown} alignment to {layout.space}",
        figure=layout.qc(*ids, ".png"),
        table=layout.qc(*ids, ".tsv"),
    )


def preprocess_session(
    images: Mapping[str, str],
    *,
    layout: PrepLayout,
    subject: str,
    session: str,
    preps: Sequence[str],
    pre: Mapping[str, Any],
    template: str,
    template_mask: str,
    manual_mask: str | None = None,
    qc: bool = True,
) -> dict[str, float]:
    """Preprocess one session into ``layout``: native brains, mask and transforms, every prep in ``preps``, and
    (``qc``) the alignment QC figure and table. ``images``: raw scan per sequence (T1w first); ``pre``: the
    config's ``preprocess`` section. Returns the seconds of each step."""
    if not preps:
        raise ValueError(f"sub-{subject} ses-{session}: no prep to build")
    ids, seconds = (subject, session), {}
    start = time.perf_counter()
    info = prepare_session(
        images,
        out_brain={q: layout.brain(*ids, q) for q in layout.sequences},
        out_mask=layout.mask(*ids),
        out_xfm={q: layout.seq_xfm(*ids, q) for q in layout.sequences[1:]},
        bias=pre["bias"],
        brain=pre["brain"],
        manual_mask=manual_mask,
        iso_mm=float(pre["iso_mm"]),
        level_mm=float(pre["session_level_mm"]),
    )
    _timed(seconds, f"prepare (brain {info['brain_ml']:.0f} ml, {info['engine']})", start)
    keys = session_keys(preps, pre)
    seconds.update(_register_all(layout, ids, keys, pre, (template, template_mask)))
    _write_flirt(layout, ids, keys, template)
    seconds.update(_resample_all(layout, ids, preps, pre, template))
    if qc:
        start = time.perf_counter()
        _qc(layout, ids, preps, str(pre["primary"]), (template, template_mask))
        _timed(seconds, "qc", start)
    return seconds
