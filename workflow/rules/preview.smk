# Preview: every configured edit on a few keyframes (e4e inversion only, no PTI / stitching), one contact sheet per
# video from the frames / landmarks / align outputs of the full run. `snakemake preview` builds all videos' sheets:
# a rule with wildcards cannot be a target by name, so the per-video job is rule preview_video and rule preview
# (no wildcards) gathers it.


rule preview_video:
    """results/{video}/preview/contact_sheet.png: rows = keyframes; columns = source, e4e reconstruction, edits."""
    input:
        video=video_path,
        info=R("frames", "info.json"),
        tracks=R("landmarks", "tracks.npz"),
        quads=R("align", "quads.npz"),
        pack=pack_files,
        **PROBE,  # edits with targets are calibrated on the keyframes (stitch.preview.calibrate_targets)
    output:
        sheet=R("preview", "contact_sheet.png"),
        layout=R("preview", "layout.json"),
    log:
        R("logs", "preview.log"),
    benchmark:
        R("benchmarks", "preview.tsv")
    params:
        pack=lambda wc: pack_dir(wc.video),
        edits=EDITS,
        targets={e: EDIT_TARGETS[e] for e in config["edits"] if EDIT_TARGETS[e]},
        sweeps={s: [e, SWEEP_MULTIPLIER[s]] for s, e in SWEPT_EDIT.items() if EDIT_TARGETS[e]},
        calibrate=stage_settings("calibrate"),
        keyframes=5,
        feather=lambda wc: setting(wc.video, "paste", "feather"),
        mode=lambda wc: setting(wc.video, "paste", "mode"),
    threads: 1  # torch: 1 thread per job (benchmarks/bench_threads.py, README)
    resources:
        gpu=1,
        mem_mb=3000,
        runtime=10,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/preview.py"


rule preview:
    """Target: every video's preview contact sheet."""
    input:
        [f"{RESULTS}/{video}/preview/contact_sheet.png" for video in SAMPLES.index],
