# Each video's resolved stage settings with the source of each value (sample / config / pack / default).


rule settings:
    """results/{video}/settings.yaml: what every stage of this video uses, and where each value came from."""
    input:
        pack=pack_files,
    output:
        settings=R("settings.yaml"),
    log:
        R("logs", "settings.log"),
    benchmark:
        R("benchmarks", "settings.tsv")
    params:
        document=settings_document,
        pack=lambda wc: pack_dir(wc.video),  # verified here: the video's first job
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/settings.py"
