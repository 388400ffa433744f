# Video in and out: the demo clip, decoding facts + audio, and the final H.264 + AAC encode.


rule democlip:
    """The README demo's input: a clip made at run time from matplotlib's bundled photo (no download)."""
    output:
        video=f"{RESULTS}/_inputs/grace_hopper.mp4",
    log:
        f"{RESULTS}/_inputs/democlip.log",
    benchmark:
        f"{RESULTS}/_inputs/democlip.benchmark.tsv"
    params:
        seconds=3.0,
        fps=24,
        size=256,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/democlip.py"


checkpoint frames:
    """Decoding facts (frames/info.json: the decoded frame count sets the number of shards) and the audio."""
    input:
        video=video_path,
    output:
        info=R("frames", "info.json"),
        audio=R("frames", "audio.wav"),
    log:
        R("logs", "frames.log"),
    benchmark:
        R("benchmarks", "frames.tsv")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/frames.py"


rule encode:
    """An edit's H.264 segments joined (no re-encoding) at the source frame times with the source audio; likewise
    the side-by-side original | reconstruction | edit."""
    input:
        segments=shard_files(R("paste", "{method}", "{edit}", "{shard}.mp4")),
        side_by_side=shard_files(R("paste", "{method}", "{edit}", "{shard}.side_by_side.mp4")),
        info=R("frames", "info.json"),
        audio=R("frames", "audio.wav"),
    output:
        video=R("encode", "{method}", "{edit}.mp4"),
        side_by_side=R("encode", "{method}", "side_by_side_{edit}.mp4"),
    log:
        R("logs", "encode_{method}_{edit}.log"),
    benchmark:
        R("benchmarks", "encode_{method}_{edit}.tsv")
    wildcard_constraints:
        edit="|".join(EDITS),
    threads: 1  # remuxing only
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/encode.py"


rule encode_recon:
    """The method's reconstruction (no edit) as a video: compared against in the side-by-side and the metrics."""
    input:
        segments=shard_files(R("paste", "{method}", "_recon", "{shard}.mp4")),
        info=R("frames", "info.json"),
        audio=R("frames", "audio.wav"),
    output:
        video=R("encode", "{method}", "_recon.mp4"),
    log:
        R("logs", "encode_{method}__recon.log"),
    benchmark:
        R("benchmarks", "encode_{method}__recon.tsv")
    threads: 1  # remuxing only
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/encode_recon.py"
