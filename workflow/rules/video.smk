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


rule frames:
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
    """Edited frames -> H.264 at the source fps with the source audio; plus original | reconstruction | edit."""
    input:
        video=video_path,
        frames=R("paste", "{method}", "{edit}.npy"),
        recon=R("encode", "{method}", "_recon.mp4"),
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
    threads: 2
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
        frames=R("paste", "{method}", "_recon.npy"),
        info=R("frames", "info.json"),
        audio=R("frames", "audio.wav"),
    output:
        video=R("encode", "{method}", "_recon.mp4"),
    log:
        R("logs", "encode_{method}__recon.log"),
    benchmark:
        R("benchmarks", "encode_{method}__recon.tsv")
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/encode_recon.py"
