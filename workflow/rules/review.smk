# Review pages (stitch.review): results/{video}/review.html plays the original and every edit of the configured
# methods in sync with per-frame curves; results/review.html links them. Offline: open the files from disk.


rule review_source:
    """The original as H.264 + its audio at the exact fps, for the review page (inputs outside the results folder)."""
    input:
        video=video_path,
        info=R("frames", "info.json"),
        audio=R("frames", "audio.wav"),
    output:
        video=R("review", "source.mp4"),
    log:
        R("logs", "review_source.log"),
    benchmark:
        R("benchmarks", "review_source.tsv")
    threads: 2
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/review_source.py"


rule review:
    """One video's review page: original and edits in synchronised playback, strength slider, per-frame curves."""
    input:
        unpack(review_inputs),
    output:
        page=R("review.html"),
    log:
        R("logs", "review.log"),
    benchmark:
        R("benchmarks", "review.tsv")
    params:
        layout=review_layout,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/review.py"


rule review_index:
    """results/review.html: every video's page with its facts and summary metrics."""
    input:
        pages=[f"{RESULTS}/{video}/review.html" for video in SAMPLES.index],
        infos=[R("frames", "info.json").format(video=video) for video in SAMPLES.index],
        summaries=table_summaries(config["methods"]),
    output:
        page=f"{RESULTS}/review.html",
    log:
        f"{RESULTS}/logs/review_index.log",
    benchmark:
        f"{RESULTS}/benchmarks/review_index.tsv"
    params:
        videos=list(SAMPLES.index),
        summaries={v: {m: {e: metric_path(v, m, e, "json") for e in EVAL_EDITS} for m in config["methods"]}
                   for v in SAMPLES.index},
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/review_index.py"
