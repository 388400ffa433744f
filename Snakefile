# Stitch: temporally coherent GAN-based face editing of real videos. See README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/settings.smk"
include: "workflow/rules/video.smk"
include: "workflow/rules/face.smk"
include: "workflow/rules/latent.smk"
include: "workflow/rules/stitching.smk"
include: "workflow/rules/baseline.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/review.smk"
include: "workflow/rules/preview.smk"
include: "workflow/rules/zoo.smk"
include: "workflow/rules/ffhq_pack.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
