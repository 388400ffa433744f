# The demo model pack, trained by the project itself on UTKFace (target: demo_pack). Rerun with
#   snakemake --cores 2 demo_pack
# Training is resumable: both phases checkpoint every few minutes into {zoo.work}/{train,adversarial}/ckpt.pt.

ZOO = config.get("zoo", {})
ZOO_WORK = ZOO.get("work", "results/zoo")


rule zoo_data:
    input:
        tar=ZOO.get("utkface_tar", "../shared/data/faces/utkface.tar"),
    output:
        data=f"{ZOO_WORK}/utkface_{ZOO.get('size', 64)}.npz",
    log:
        f"{ZOO_WORK}/logs/zoo_data.log",
    benchmark:
        f"{ZOO_WORK}/benchmarks/zoo_data.tsv"
    params:
        size=ZOO.get("size", 64),
        align_scale=ZOO.get("align_scale", 0.6),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    shell:
        f"python {workflow.basedir}/scripts/zoo_data.py"
        " {input.tar} {output.data} --size {params.size}"
        " --align-scale {params.align_scale} --workers {threads} > {log} 2>&1"


rule zoo_train:
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
        steps=ZOO.get("steps", 5000),
        batch=ZOO.get("batch", 32),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=180,
    conda:
        "../../envs/stitch.yaml"
    shell:
        f"python {workflow.basedir}/scripts/zoo_train.py"
        " {input.data} {params.work} --steps {params.steps}"
        " --batch {params.batch} --threads {threads} > {log} 2>&1"


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
        steps=ZOO.get("adversarial_steps", 2400),
        batch=ZOO.get("adversarial_batch", 16),
        adv_weight=ZOO.get("adversarial_weight", 0.1),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/stitch.yaml"
    shell:
        f"python {workflow.basedir}/scripts/zoo_adversarial.py"
        " {input.data} {input.generator} {input.encoder} {params.work} --steps {params.steps}"
        " --batch {params.batch} --adv-weight {params.adv_weight} --threads {threads} > {log} 2>&1"


rule zoo_directions:
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
    """Assemble resources/models/demo: weights, directions, manifest with sha256 and provenance."""
    input:
        generator=rules.zoo_adversarial.output.generator,
        encoder=rules.zoo_adversarial.output.encoder,
        train_metrics=rules.zoo_train.output.metrics,
        adversarial_metrics=rules.zoo_adversarial.output.metrics,
        directions=rules.zoo_directions.output.directions,
        direction_stats=rules.zoo_directions.output.stats,
    output:
        manifest="resources/models/demo/pack.yaml",
    log:
        f"{ZOO_WORK}/logs/demo_pack.log",
    benchmark:
        f"{ZOO_WORK}/benchmarks/demo_pack.tsv"
    params:
        align_scale=ZOO.get("align_scale", 0.6),
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
    generator. Shipped copy: resources/probes/attributes.{safetensors,json} (copy the outputs there)."""
    input:
        tar=ZOO.get("utkface_tar", "../shared/data/faces/utkface.tar"),
    output:
        weights=f"{ZOO_WORK}/probe/attributes.safetensors",
        config=f"{ZOO_WORK}/probe/attributes.json",
    log:
        f"{ZOO_WORK}/logs/zoo_probe.log",
    benchmark:
        f"{ZOO_WORK}/benchmarks/zoo_probe.tsv"
    params:
        n_faces=ZOO.get("probe_faces", 3000),
        seed=0,
        cache=f"{ZOO_WORK}/probe/descriptors.npz",  # not an output: Snakemake keeps it, so refits are cheap
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/stitch.yaml"
    shell:
        f"python {workflow.basedir}/scripts/zoo_probe.py"
        " {input.tar} {output.weights} --n-faces {params.n_faces}"
        " --seed {params.seed} --cache {params.cache} > {log} 2>&1"
