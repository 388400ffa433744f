"""e4e checkpoints (``state_dict`` with ``encoder.*`` / ``decoder.*``, ``latent_avg``, ``opts``): the
:class:`~stitch.models.e4e.Encoder4Editing` (architecture inferred from the tensor shapes) and its rosinality
decoder (:mod:`stitch.models.rosinality`). Every source tensor must be used."""

from __future__ import annotations

from pathlib import Path

import torch

from stitch.errors import StitchError
from stitch.models.e4e import Encoder4Editing, EncoderConfig
from stitch.models.native import load_state_strict
from stitch.models.rosinality import build_rosinality_generator, opts_dict, tensor_dict
from stitch.models.sniff import LoadedCheckpoint


def _shape(sd: dict[str, torch.Tensor], key: str, source: Path) -> tuple[int, ...]:
    if key not in sd:
        raise StitchError(f"{source}: e4e encoder lacks {key!r}")
    return tuple(sd[key].shape)


def _backbone(sd: dict[str, torch.Tensor], source: Path) -> tuple[list[tuple[int, int, int]], tuple, tuple]:
    """IR-SE units (in channels, depth, SE hidden width) and the 4 stages' channels / unit counts."""
    units = []
    while f"body.{len(units)}.res_layer.1.weight" in sd:
        depth, in_c = _shape(sd, f"body.{len(units)}.res_layer.1.weight", source)[:2]
        hidden = _shape(sd, f"body.{len(units)}.res_layer.5.fc1.weight", source)[0]
        units.append((in_c, depth, hidden))
    stages: list[list] = []
    for u in units:
        if stages and stages[-1][0] == u[1]:
            stages[-1][1] += 1
        else:
            stages.append([u[1], 1])
    if len(stages) != 4:
        raise StitchError(f"{source}: e4e backbone has {len(stages)} stages by channel count, expected 4")
    stage_channels = tuple(int(s[0]) for s in stages)
    if _shape(sd, "input_layer.0.weight", source)[0] != stage_channels[0]:
        raise StitchError(f"{source}: e4e input layer width does not match the first stage")
    return units, stage_channels, tuple(int(s[1]) for s in stages)


def _se_reduction(units: list[tuple[int, int, int]], source: Path) -> int:
    """The one squeeze-excitation reduction ratio that gives every unit's hidden width."""
    dmax, hmax = max((u[1], u[2]) for u in units)
    red = next((r for r in range(max(dmax // hmax, 1), dmax + 1) if all(max(d // r, 1) == h for _, d, h in units)), None)
    if red is None:
        raise StitchError(f"{source}: e4e squeeze-excitation widths fit no single reduction ratio")
    return int(red)


def _style_heads(sd: dict[str, torch.Tensor], source: Path) -> dict:
    """EncoderConfig fields from the map2style heads: num_ws, w_dim, input size and coarse/middle split."""
    num_ws = 0
    while f"styles.{num_ws}.linear.weight" in sd:
        num_ws += 1
    if num_ws == 0:
        raise StitchError(f"{source}: e4e encoder has no style heads ('styles.0.linear.weight')")
    w_dim = _shape(sd, "styles.0.linear.weight", source)[0]
    pools = []
    for i in range(num_ws):
        n = 0
        while f"styles.{i}.convs.{2 * n}.weight" in sd:
            n += 1
        pools.append(n)
    p0 = pools[0]
    if any(p not in (p0, p0 + 1, p0 + 2) for p in pools) or pools != sorted(pools) or p0 < 1:
        raise StitchError(f"{source}: e4e style heads have an unexpected pyramid layout {pools}")
    coarse = pools.count(p0)
    return {"input_size": 16 * 2**p0, "num_ws": num_ws, "w_dim": int(w_dim), "coarse_ind": coarse,
            "middle_ind": coarse + pools.count(p0 + 1)}


def infer_encoder_config(sd: dict[str, torch.Tensor], source: str | Path) -> EncoderConfig:
    """EncoderConfig of an e4e ``encoder.*`` state dict (prefix stripped), from the tensor shapes."""
    source = Path(source)
    units, stage_channels, stage_units = _backbone(sd, source)
    red = _se_reduction(units, source)
    heads = _style_heads(sd, source)
    try:
        return EncoderConfig(stage_channels=stage_channels, stage_units=stage_units, se_reduction=red, **heads)
    except ValueError as e:
        raise StitchError(f"{source}: invalid e4e encoder architecture ({e})") from None


def _split_state(sd: dict[str, torch.Tensor], path: Path) -> tuple[dict, dict]:
    """(encoder, decoder) state dicts without their prefixes; any other tensor is an error."""
    enc_sd = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    dec_sd = {k[len("decoder."):]: v for k, v in sd.items() if k.startswith("decoder.")}
    leftovers = sorted(k for k in sd if not k.startswith(("encoder.", "decoder.")))
    if leftovers:
        raise StitchError(f"{path}: {len(leftovers)} state_dict tensor(s) are neither encoder nor decoder: {leftovers[:6]}")
    if not enc_sd or not dec_sd:
        raise StitchError(f"{path}: e4e checkpoint needs both encoder.* and decoder.* weights")
    return enc_sd, dec_sd


def _encoder_latent_avg(latent_avg: torch.Tensor | None, start_avg: bool, ecfg: EncoderConfig, path: Path,
                        notes: list[str]) -> torch.Tensor:
    """The encoder's (num_ws, w_dim) ``latent_avg`` buffer: the checkpoint's, or 0 without start_from_latent_avg."""
    if not start_avg:
        notes.append("start_from_latent_avg is False: encoder latent_avg = 0")
        return torch.zeros(ecfg.num_ws, ecfg.w_dim)
    la = latent_avg.detach().float()
    if la.ndim == 1:
        la = la[None]
    if la.ndim != 2 or la.shape[-1] != ecfg.w_dim or la.shape[0] not in (1, ecfg.num_ws):
        raise StitchError(
            f"{path}: latent_avg has shape {tuple(latent_avg.shape)}, expected ({ecfg.num_ws}, {ecfg.w_dim}) "
            f"or ({ecfg.w_dim},)"
        )
    return la.expand(ecfg.num_ws, ecfg.w_dim).clone()


def load_e4e_checkpoint(path: Path, ckpt: dict) -> LoadedCheckpoint:
    """Encoder + decoder of an e4e checkpoint already read by ``torch_load``."""
    sd = tensor_dict(ckpt["state_dict"], "state_dict", path)
    opts = opts_dict(ckpt.get("opts"))
    enc_type = opts.get("encoder_type")
    if enc_type is not None and enc_type != "Encoder4Editing":
        raise StitchError(f"{path}: encoder_type {enc_type!r} is not supported; expected an e4e 'Encoder4Editing'")
    enc_sd, dec_sd = _split_state(sd, path)
    latent_avg = ckpt.get("latent_avg")
    start_avg = opts.get("start_from_latent_avg", True)
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        raise StitchError(f"{path}: latent_avg is a {type(latent_avg).__name__}, expected a tensor")
    if latent_avg is None and start_avg:
        raise StitchError(f"{path}: e4e checkpoint has no latent_avg (needed with start_from_latent_avg)")
    notes: list[str] = []
    ecfg = infer_encoder_config(enc_sd, path)
    enc = Encoder4Editing(ecfg)
    load_state_strict(enc, {**enc_sd, "latent_avg": _encoder_latent_avg(latent_avg, start_avg, ecfg, path, notes)}, path)
    dec_args = {"size": opts["stylegan_size"]} if "stylegan_size" in opts else None
    g, gnotes = build_rosinality_generator(dec_sd, path, latent_avg, dec_args)
    if g.num_ws != ecfg.num_ws or g.w_dim != ecfg.w_dim:
        raise StitchError(
            f"{path}: encoder outputs ({ecfg.num_ws}, {ecfg.w_dim}) codes but the decoder takes ({g.num_ws}, {g.w_dim})"
        )
    n = len(sd) + (latent_avg is not None)
    return LoadedCheckpoint(path, "e4e", generator=g, encoder=enc, source_tensors=n, notes=notes + gnotes)
