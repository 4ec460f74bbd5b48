"""Image optimisation: Gatys style transfer, feature inversion, texture synthesis, DeepDream, scoring.

Every method here optimises the pixels of one image (RGB in [0, 1], NCHW) against a frozen
:class:`~fastnst.networks.vgg.VGGFeatures` network with the loss terms of :mod:`fastnst.losses`; no
Lightning, a plain loop. The library never prints: pass ``callback`` to see each :class:`Step`. Each public
function returns a PIL image; the ``*_result`` variants also return the final loss terms. The jobs
(:class:`GatysJob`, ..., :func:`run_job`) are what ``fastnst gatys|invert|texture|dream`` run: every
option declared once, checked before any work, results written to files.

The rooms: :mod:`~fastnst.optimize.settings` (defaults with their sources, the settings dataclasses),
:mod:`~fastnst.optimize.inputs` (input images, the start image, the device), :mod:`~fastnst.optimize.loop`
(L-BFGS/Adam over the pixels, :class:`Step`, :class:`OptimizationResult`), one module per method
(:mod:`~fastnst.optimize.objective`: the Gatys objective and :func:`score`; :mod:`~fastnst.optimize.transfer`:
:func:`gatys`; :mod:`~fastnst.optimize.synthesis`: :func:`texture`; :mod:`~fastnst.optimize.inversion`:
:func:`invert`; :mod:`~fastnst.optimize.deepdream`: :func:`dream`) and :mod:`~fastnst.optimize.jobs`.
The modules are named after their concept, not their function, so that no function shadows its module here.
The loss network's factory is :func:`fastnst.networks.vgg.build_vgg`.

Speed (see scripts/bench_gatys.py): the loss network is truncated at the deepest layer used, its
weights never need gradients, activations run channels-last, content and style targets are
computed once per scale under ``torch.inference_mode``, and L-BFGS makes exactly one loss
evaluation per iteration.
"""

from fastnst.errors import OptimizationInterrupted
from fastnst.optimize.deepdream import dream, dream_result
from fastnst.optimize.inputs import ImageLike, resolve_device
from fastnst.optimize.inversion import inversion_grid, invert, invert_layers, invert_result
from fastnst.optimize.jobs import (JOBS, DreamJob, GatysJob, ImageJobOptions, InvertJob, JobReport, RunOptions,
                                   StyleJobOptions, TextureJob, parse_size, run_job)
from fastnst.optimize.loop import OptimizationResult, ProgressCallback, Step, terms_text
from fastnst.optimize.objective import GatysLoss, score
from fastnst.optimize.settings import (ADAM_LR, DREAM_ITERATIONS, DREAM_JITTER, DREAM_LAYER, DREAM_OCTAVE_SCALE,
                                       DREAM_OCTAVES, DREAM_STEP, GATYS_CONTENT_WEIGHT, GATYS_ITERATIONS, GATYS_SIZE,
                                       GATYS_STYLE_WEIGHT, GATYS_TV_WEIGHT, INIT_CHOICES, INVERT_ITERATIONS,
                                       INVERT_LAYER, INVERT_TV_WEIGHT, LBFGS_HISTORY, OPTIMIZERS, TEXTURE_ITERATIONS,
                                       DreamSettings, GatysSettings, NetworkSettings, OptimizerSettings)
from fastnst.optimize.synthesis import texture, texture_result
from fastnst.optimize.transfer import gatys, gatys_result

__all__ = ["ADAM_LR", "DREAM_ITERATIONS", "DREAM_JITTER", "DREAM_LAYER", "DREAM_OCTAVES", "DREAM_OCTAVE_SCALE",
           "DREAM_STEP", "GATYS_CONTENT_WEIGHT", "GATYS_ITERATIONS", "GATYS_SIZE", "GATYS_STYLE_WEIGHT",
           "GATYS_TV_WEIGHT", "INIT_CHOICES", "INVERT_ITERATIONS", "INVERT_LAYER", "INVERT_TV_WEIGHT", "JOBS",
           "LBFGS_HISTORY", "OPTIMIZERS", "TEXTURE_ITERATIONS", "DreamJob", "DreamSettings", "GatysJob", "GatysLoss",
           "GatysSettings", "ImageJobOptions", "ImageLike", "InvertJob", "JobReport", "NetworkSettings",
           "OptimizationInterrupted", "OptimizationResult", "OptimizerSettings", "ProgressCallback", "RunOptions",
           "Step", "StyleJobOptions", "TextureJob", "dream", "dream_result", "gatys", "gatys_result",
           "inversion_grid", "invert", "invert_layers", "invert_result", "parse_size", "resolve_device", "run_job",
           "score", "terms_text", "texture", "texture_result"]
