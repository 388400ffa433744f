"""Networks: StyleGAN2 generator, e4e encoder, auxiliary nets, and their loaders."""

from stitch.models.e4e import EncoderConfig, Encoder4Editing
from stitch.models.loaders import load_encoder, load_generator
from stitch.models.stylegan2 import Generator, GeneratorConfig

__all__ = ["Encoder4Editing", "EncoderConfig", "Generator", "GeneratorConfig", "load_encoder", "load_generator"]
