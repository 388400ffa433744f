# The official model pack (ffhq): fetch where a network exists, else say where each file goes; convert once.


rule ffhq_pack:
    """Build resources/models/ffhq from the official STIT files (see README, 'Using the official weights')."""
    output:
        # absolute, as the pack folder the model stages ask for (pack_dir): the same file for Snakemake
        manifest=str(PACKS_DIR / "ffhq" / "pack.yaml"),
    log:
        str(PACKS_DIR / "ffhq" / "ffhq_pack.log"),
    benchmark:
        str(PACKS_DIR / "ffhq" / "ffhq_pack.benchmark.tsv")
    params:
        download=True,
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/ffhq_pack.py"
