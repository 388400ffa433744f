"""Generator forward / forward+backward time per image (batch 1, fp32, CPU or --device).

    python benchmarks/bench_generator.py [--iters 3] [--sizes 64 256 1024] [--device cpu]

Configs: the StyleGAN2 config-F family (channel_base 32768, channel_max 512, 8 mapping layers, conv_clamp
256 as in NVIDIA's ffhq.pkl) at 64 / 256 / 1024 px — 1024 px is the full FFHQ/STIT generator — plus the
demo pack's generator (``stitch.zoo.train.DEMO_GENERATOR``). Backward = gradients of an image loss w.r.t.
all generator weights and the W+ latent (what PTI tuning and inversion do per step).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from stitch.models.stylegan2 import Generator, GeneratorConfig, generator_num_params  # noqa: E402
from stitch.zoo.train import DEMO_GENERATOR  # noqa: E402


def config_f(res: int) -> GeneratorConfig:
    return GeneratorConfig(img_resolution=res, channel_base=32768, channel_max=512, conv_clamp=256.0)


def bench(g: Generator, iters: int, device: str) -> tuple[float, float]:
    g = g.to(device).train(False)
    ws0 = g.mapping(torch.randn(1, g.z_dim, device=device)).detach()

    def fwd() -> None:
        with torch.no_grad():
            g.synthesis(ws0, noise_mode="const")

    def fwd_bwd() -> None:
        g.zero_grad(set_to_none=True)
        ws = ws0.clone().requires_grad_(True)
        img = g.synthesis(ws, noise_mode="const")
        img.square().mean().backward()

    out = []
    for fn in (fwd, fwd_bwd):
        fn()  # warm-up
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        out.append((time.perf_counter() - t0) / iters)
    return out[0], out[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-demo", action="store_true")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    runs = [(f"config-F {r}px", config_f(r)) for r in a.sizes]
    if not a.no_demo:
        runs.append((f"demo {DEMO_GENERATOR.img_resolution}px", DEMO_GENERATOR))
    print(f"torch {torch.__version__}, device {a.device}, threads {torch.get_num_threads()}, batch 1, "
          f"{a.iters} timed iterations after 1 warm-up")
    print(f"{'model':<18}{'num_ws':>7}{'params':>13}{'forward s/img':>16}{'fwd+bwd s/img':>16}")
    for name, cfg in runs:
        g = Generator(cfg)
        f, fb = bench(g, max(1, a.iters if cfg.img_resolution < 1024 else min(a.iters, 2)), a.device)
        print(f"{name:<18}{g.num_ws:>7}{generator_num_params(g):>13,}{f:>16.4f}{fb:>16.4f}", flush=True)
        del g


if __name__ == "__main__":
    main()
