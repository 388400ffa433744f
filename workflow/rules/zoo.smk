# The demo model pack and the attribute probe, trained by the project itself on UTKFace. Build and ship both with
#   snakemake --cores 2 zoo_publish
# (zoo_data -> zoo_train -> zoo_adversarial -> zoo_directions -> demo_pack, and zoo_probe; then zoo_publish).
# Everything is built under {zoo.work} (results/zoo/<stage>/); only zoo_publish writes to resources/, and its declared
# output is a receipt under {zoo.work}, so the pipeline's rules read the shipped files and never schedule training.
# Rule zoo_<stage> -> scripts/zoo_<stage>.py -> stitch/zoo/<stage>.py -> {zoo.work}/<stage>/, settings from config
# zoo.<stage> (demo_pack -> scripts/demo_pack.py -> stitch/packs/demo.py -> {zoo.work}/pack/).
# Training is resumable: both phases checkpoint every few minutes into {zoo.work}/{train,adversarial}/ckpt.pt.

ZOO = config["zoo"]
ZOO_WORK = ZOO["work"]


rule zoo_data:
    """UTKFace aligned like the pipeline aligns frames, with a fixed held-out split."""
    input:
        tar=ZOO["utkface_tar"],
    output:
        data=f"{ZOO_WORK}/data/utkface.npz",
    log:
        f"{ZOO_WORK}/logs/zoo_data.log",
    benchmark:
        f"{ZOO_WORK}/benchmarks/zoo_data.tsv"
    params:
        settings=ZOO.get("data", {}),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/zoo_data.py"


rule zoo_train:
    """Generator + encoder trained jointly as an encoder-decoder (resumable)."""
    input:
        data=rules.zoo_data.output.data,
    output:
        generator=f"{ZOO_WORK}/train/final/generator.safetensors",
        encoder=f"{ZOO_WORK}/train/final/encoder.safetensors",
        metrics=f"{ZOO_WORK}/train/final/train_metrics.json",
    log:
        f"{ZOO_WORK}/logs/zoo_train.log",
    benchmark:
        f"{ZOO_WORK}/benchmarks/zoo_train.tsv"
    params:
        work=lambda wc, output: str(Path(output.generator).parents[1]),
        settings=ZOO.get("train", {}),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=180,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/zoo_train.py"


rule zoo_adversarial:
    """Adversarial phase: fine-tune zoo_train's encoder-decoder against a discriminator (resumable)."""
    input:
        data=rules.zoo_data.output.data,
        generator=rules.zoo_train.output.generator,
        encoder=rules.zoo_train.output.encoder,
    output:
        generator=f"{ZOO_WORK}/adversarial/final/generator.safetensors",
        encoder=f"{ZOO_WORK}/adversarial/final/encoder.safetensors",
        metrics=f"{ZOO_WORK}/adversarial/final/train_metrics.json",
    log:
        f"{ZOO_WORK}/logs/zoo_adversarial.log",
    benchmark:
        f"{ZOO_WORK}/benchmarks/zoo_adversarial.tsv"
    params:
        work=lambda wc, output: str(Path(output.generator).parents[1]),
        settings=ZOO.get("adversarial", {}),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/zoo_adversarial.py"


rule zoo_directions:
    """Age / gender / smile directions fitted on the encoded training faces."""
    input:
        data=rules.zoo_data.output.data,
        encoder=rules.zoo_adversarial.output.encoder,
    output:
        directions=f"{ZOO_WORK}/directions/directions.safetensors",
        stats=f"{ZOO_WORK}/directions/stats.json",
    log:
        f"{ZOO_WORK}/logs/zoo_directions.log",
    benchmark:
        f"{ZOO_WORK}/benchmarks/zoo_directions.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/zoo_directions.py"


rule demo_pack:
    """Assemble the demo pack folder: weights, directions, manifest with sha256 and provenance."""
    input:
        generator=rules.zoo_adversarial.output.generator,
        encoder=rules.zoo_adversarial.output.encoder,
        train_metrics=rules.zoo_train.output.metrics,
        adversarial_metrics=rules.zoo_adversarial.output.metrics,
        directions=rules.zoo_directions.output.directions,
        direction_stats=rules.zoo_directions.output.stats,
        data=rules.zoo_data.output.data,
    output:
        manifest=f"{ZOO_WORK}/pack/pack.yaml",
        generator=f"{ZOO_WORK}/pack/generator.safetensors",
        generator_config=f"{ZOO_WORK}/pack/generator.json",
        encoder=f"{ZOO_WORK}/pack/encoder.safetensors",
        encoder_config=f"{ZOO_WORK}/pack/encoder.json",
        directions=f"{ZOO_WORK}/pack/directions.safetensors",
    log:
        f"{ZOO_WORK}/logs/demo_pack.log",
    benchmark:
        f"{ZOO_WORK}/benchmarks/demo_pack.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/demo_pack.py"


rule zoo_probe:
    """Attribute probe (ridge age, logistic gender on dlib descriptors) that measures edit strength without the
    generator."""
    input:
        tar=ZOO["utkface_tar"],
    output:
        weights=f"{ZOO_WORK}/probe/attributes.safetensors",
        config=f"{ZOO_WORK}/probe/attributes.json",
    log:
        f"{ZOO_WORK}/logs/zoo_probe.log",
    benchmark:
        f"{ZOO_WORK}/benchmarks/zoo_probe.tsv"
    params:
        settings=ZOO.get("probe", {}),
        cache=f"{ZOO_WORK}/probe/descriptors.npz",  # not an output: Snakemake keeps it, so refits are cheap
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/zoo_probe.py"


rule zoo_publish:
    """Ship the demo pack to resources/models/demo/ and the probe to resources/probes/ (identical files are left
    untouched); the output is a receipt, so the pipeline depends on the shipped files, not on this rule."""
    input:
        pack=rules.demo_pack.output,
        probe=rules.zoo_probe.output,
    output:
        receipt=f"{ZOO_WORK}/publish/receipt.json",
    log:
        f"{ZOO_WORK}/logs/zoo_publish.log",
    benchmark:
        f"{ZOO_WORK}/benchmarks/zoo_publish.tsv"
    params:
        pack=str(PACKS_DIR / "demo"),
        probe=str(Path(PROBE["probe"]).parent),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/zoo_publish.py"
