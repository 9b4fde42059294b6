"""The twin's architecture as frozen dataclasses, with the paper's sizes as the defaults.

``TwinConfig()`` is the paper's network (Wang et al. 2025, Methods; the released CvT-LSTM
configuration); ``TwinConfig.small()`` is a toy of the same shape that trains on a CPU in a
test. Presets are TOML files in ``models/`` (package data under ``twinlab/presets/models``)
written from these dataclasses; :func:`resolve_config` reads a preset name or a ``.toml``
path and applies ``key=value`` overrides (``recurrent.kind=conv_lstm``).

A config describes an *architecture*: two twins with equal configs have state dicts of equal
keys and shapes (per session, given the neuron counts). Checkpoints store it as JSON and
loading compares it field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..errors import InputError
from ..settings import PresetKind, to_plain

__all__ = [
    "PerspectiveConfig",
    "ModulationConfig",
    "FeedforwardConfig",
    "RecurrentConfig",
    "ReadoutConfig",
    "TwinConfig",
    "resolve_config",
    "config_from_dict",
    "config_to_toml",
    "preset_names",
    "config_differences",
    "MODELS",
]

RECURRENT_KINDS = ("conv_lstm", "cvt_lstm")
CONV_KINDS = ("3d", "2d")
FEEDFORWARD_KINDS = ("dense", "rotation_equivariant")
ACTIVATION_KINDS = ("gelu", "two_input")  # twinlab.model.activations.ACTIVATIONS
OUTPUTS = ("exp", "softplus")


# upper bounds of the sizes (far above any sensible network, far below what would exhaust a
# machine before a check could run): a config read from a file sizes tensors from them
MAX_PIXELS = 4096  # frame and retina height / width
MAX_CHANNELS = 8192
MAX_LAYERS = 64
MAX_KERNEL = 63


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)


def _at_most(table: str, values: Mapping[str, Any], limit: int) -> None:
    for name, v in values.items():
        for x in v if isinstance(v, tuple) else (v,):
            _check(x <= limit, f"{table}: {name} = {x} is out of range (at most {limit})")


@dataclass(frozen=True)
class PerspectiveConfig:
    """Retina and eye of the perspective module (one per session).

    retina_height, retina_width : pixels of the rendered retina (paper: 128 x 192).
    retina_half_width_deg : the retina grid spans +-this horizontally (paper: 75); rows use
        the same spacing, so 128 x 192 spans +-50 deg vertically.
    eye_hidden, eye_layers : the MLP from pupil centre to 3 eye rotation angles (8, 3 layers).
    pixel_power : luminance = pixel ** power before sampling. twinlab frames already hold
        luminance (session format), so 1.0; the paper's monitor pixel power was 1.7.
    monitor_init_std : std of the random start of the monitor's 6 DoF (shift in units of the
        viewing distance, rotation in radians). 0 starts exactly at the session's Screen;
        the paper used 0.05.
    """

    retina_height: int = 128
    retina_width: int = 192
    retina_half_width_deg: float = 75.0
    eye_hidden: int = 8
    eye_layers: int = 3
    pixel_power: float = 1.0
    monitor_init_std: float = 0.0

    def __post_init__(self) -> None:
        _check(self.retina_height >= 1 and self.retina_width >= 1, "perspective: retina size must be positive")
        _check(0 < self.retina_half_width_deg < 90, "perspective: retina_half_width_deg must be in (0, 90)")
        _check(self.retina_half_width_deg * self.retina_height / self.retina_width < 90,
               "perspective: the retina's vertical extent must stay below 90 deg")
        _check(self.eye_hidden >= 1 and self.eye_layers >= 1, "perspective: eye MLP sizes must be positive")
        _check(self.pixel_power > 0, "perspective: pixel_power must be positive")
        _check(self.monitor_init_std >= 0, "perspective: monitor_init_std must be non-negative")
        _at_most("perspective", {"retina_height": self.retina_height, "retina_width": self.retina_width}, MAX_PIXELS)
        _at_most("perspective", {"eye_hidden": self.eye_hidden}, MAX_CHANNELS)
        _at_most("perspective", {"eye_layers": self.eye_layers}, MAX_LAYERS)


@dataclass(frozen=True)
class ModulationConfig:
    """Behavioural modulation (one per session): running speed, pupil, d pupil / dt -> LSTM.

    hidden : LSTM width (paper 16). features : channels tiled over space into the core (4).
    """

    hidden: int = 16
    features: int = 4

    def __post_init__(self) -> None:
        _check(self.hidden >= 1 and self.features >= 1, "modulation: hidden and features must be positive")
        _at_most("modulation", {"hidden": self.hidden, "features": self.features}, MAX_CHANNELS)


@dataclass(frozen=True)
class FeedforwardConfig:
    """The shared DenseNet-style feedforward of causal 3D convolutions.

    conv : ``"3d"`` (temporal kernel ``temporal_kernel``) or ``"2d"`` (every temporal kernel 1:
        the ablation).
    stem_kernel, stem_stride : the input convolution (spatial 6, stride 2).
    block_channels : output channels of each dense block (32, 64, 128).
    layers_per_block : conv layers per block (2).
    pools : spatial average pooling after each block (2, 2, 1).
    dropout : after every conv layer (0.1).
    kind : ``"dense"`` (the paper's) or ``"rotation_equivariant"`` (Ecker et al. 2019: every
        filter applied at ``rotations`` orientations; ``block_channels`` then count all
        feature maps, ``rotations`` per learned filter, so they must be multiples of it;
        :mod:`twinlab.model.equivariant`).
    rotations : orientations per filter of the rotation-equivariant core (8; unused by "dense").
    activation : ``"gelu"`` (the paper's) or ``"two_input"`` (a small MLP of two inputs shared
        by the units of each layer, on channel pairs; the convolutions before it produce twice
        the channels; :mod:`twinlab.model.activations`).
    activation_hidden : hidden units of the two-input activation's MLP (4).
    """

    conv: str = "3d"
    stem_kernel: int = 6
    stem_stride: int = 2
    block_channels: tuple[int, ...] = (32, 64, 128)
    layers_per_block: int = 2
    temporal_kernel: int = 3
    spatial_kernel: int = 3
    pools: tuple[int, ...] = (2, 2, 1)
    dropout: float = 0.1
    kind: str = "dense"
    rotations: int = 8
    activation: str = "gelu"
    activation_hidden: int = 4

    def __post_init__(self) -> None:
        _check(self.kind in FEEDFORWARD_KINDS,
               f"feedforward: kind must be one of {FEEDFORWARD_KINDS}, got {self.kind!r}")
        _check(self.rotations >= 1, f"feedforward: rotations must be at least 1, got {self.rotations}")
        if self.kind == "rotation_equivariant":
            _check(all(c % self.rotations == 0 for c in self.block_channels),
                   f"feedforward: block_channels {list(self.block_channels)} must be multiples of rotations "
                   f"({self.rotations}) for the rotation-equivariant core")
        _check(self.activation in ACTIVATION_KINDS,
               f"feedforward: activation must be one of {ACTIVATION_KINDS}, got {self.activation!r}")
        _check(self.activation_hidden >= 1, f"feedforward: activation_hidden must be at least 1, got {self.activation_hidden}")
        _check(self.conv in CONV_KINDS, f"feedforward: conv must be one of {CONV_KINDS}, got {self.conv!r}")
        _check(len(self.block_channels) >= 1, "feedforward: block_channels must not be empty")
        _check(all(c >= 1 for c in self.block_channels), "feedforward: block_channels must be positive")
        _check(len(self.pools) == len(self.block_channels),
               f"feedforward: pools has {len(self.pools)} entries, block_channels {len(self.block_channels)}")
        _check(all(p >= 1 for p in self.pools), "feedforward: pools must be at least 1")
        for name in ("stem_kernel", "stem_stride", "layers_per_block", "temporal_kernel", "spatial_kernel"):
            _check(getattr(self, name) >= 1, f"feedforward: {name} must be at least 1")
        _check(0 <= self.dropout < 1, "feedforward: dropout must be in [0, 1)")
        _at_most("feedforward", {"block_channels": self.block_channels, "activation_hidden": self.activation_hidden},
                 MAX_CHANNELS)
        _at_most("feedforward", {"layers_per_block": self.layers_per_block, "rotations": self.rotations,
                                 "number of blocks": len(self.block_channels)}, MAX_LAYERS)
        _at_most("feedforward", {"stem_kernel": self.stem_kernel, "stem_stride": self.stem_stride,
                                 "temporal_kernel": self.temporal_kernel, "spatial_kernel": self.spatial_kernel,
                                 "pools": self.pools}, MAX_KERNEL)

    @property
    def time_kernel(self) -> int:
        return 1 if self.conv == "2d" else self.temporal_kernel


@dataclass(frozen=True)
class RecurrentConfig:
    """The shared recurrent core: Conv-LSTM or CvT-LSTM (convolutional attention in the gates).

    in_channels : feedforward features + tiled modulation are projected to this (256).
    hidden : LSTM state channels (256). out_channels : features handed to readouts (128).
    kernel : spatial kernel of the gate convolutions (3).
    heads : attention heads of the CvT-LSTM (must divide ``hidden``).
    """

    kind: str = "cvt_lstm"
    in_channels: int = 256
    hidden: int = 256
    out_channels: int = 128
    kernel: int = 3
    heads: int = 8

    def __post_init__(self) -> None:
        _check(self.kind in RECURRENT_KINDS, f"recurrent: kind must be one of {RECURRENT_KINDS}, got {self.kind!r}")
        for name in ("in_channels", "hidden", "out_channels", "kernel", "heads"):
            _check(getattr(self, name) >= 1, f"recurrent: {name} must be at least 1")
        _check(self.kernel % 2 == 1, f"recurrent: kernel must be odd, got {self.kernel}")
        _check(self.hidden % self.heads == 0, f"recurrent: heads ({self.heads}) must divide hidden ({self.hidden})")
        _at_most("recurrent", {"in_channels": self.in_channels, "hidden": self.hidden, "out_channels": self.out_channels},
                 MAX_CHANNELS)
        _at_most("recurrent", {"kernel": self.kernel}, MAX_KERNEL)


@dataclass(frozen=True)
class ReadoutConfig:
    """Per-neuron Gaussian readout (one per session).

    init_sigma : initial std of each neuron's position Gaussian, in units of the feature map's
        half-width (paper 0.4). init_position_range : initial means uniform in +-this.
    output : ``"exp"`` (the released code; Poisson log-link) or ``"softplus"``.
    """

    init_sigma: float = 0.4
    init_position_range: float = 0.5
    output: str = "exp"

    def __post_init__(self) -> None:
        _check(self.init_sigma >= 0, "readout: init_sigma must be non-negative")
        _check(0 <= self.init_position_range <= 1, "readout: init_position_range must be in [0, 1]")
        _check(self.output in OUTPUTS, f"readout: output must be one of {OUTPUTS}, got {self.output!r}")


@dataclass(frozen=True)
class TwinConfig:
    """The whole network.

    frame_height, frame_width : the input frames the twin takes (144 x 256); the responder
        resizes other render grids of the same monitor to this.
    use_perspective, use_modulation : the ablation switches (False drops the module: frames
        are resized straight onto the retina grid / the core gets no behaviour channels).
    """

    frame_height: int = 144
    frame_width: int = 256
    use_perspective: bool = True
    use_modulation: bool = True
    perspective: PerspectiveConfig = field(default_factory=PerspectiveConfig)
    modulation: ModulationConfig = field(default_factory=ModulationConfig)
    feedforward: FeedforwardConfig = field(default_factory=FeedforwardConfig)
    recurrent: RecurrentConfig = field(default_factory=RecurrentConfig)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)

    def __post_init__(self) -> None:
        _check(self.frame_height >= 1 and self.frame_width >= 1, "frame size must be positive")
        _at_most("model", {"frame_height": self.frame_height, "frame_width": self.frame_width}, MAX_PIXELS)

    @classmethod
    def small(cls) -> "TwinConfig":
        """A toy of the same architecture: 36 x 64 frames, a 24 x 36 retina, a few channels."""
        return cls(
            frame_height=36,
            frame_width=64,
            perspective=PerspectiveConfig(retina_height=24, retina_width=36),
            modulation=ModulationConfig(hidden=8, features=2),
            feedforward=FeedforwardConfig(block_channels=(8, 8, 16), pools=(2, 1, 1), dropout=0.0),
            recurrent=RecurrentConfig(kind="conv_lstm", in_channels=16, hidden=16, out_channels=16, heads=2),
            readout=ReadoutConfig(init_sigma=0.1),
        )

    @property
    def retina_shape(self) -> tuple[int, int]:
        return (self.perspective.retina_height, self.perspective.retina_width)

    @property
    def frame_shape(self) -> tuple[int, int]:
        return (self.frame_height, self.frame_width)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def core_dict(self) -> dict[str, Any]:
        """The fields that decide the shared core's weights (what a core transfer must match)."""
        d = self.to_dict()
        out = {"feedforward": d["feedforward"], "recurrent": d["recurrent"], "use_modulation": d["use_modulation"]}
        if self.use_modulation:
            out["modulation.features"] = self.modulation.features
        return out


# -- presets (the engine is twinlab.settings; these names are what the rest of the code calls) --

MODELS = PresetKind("models", "model", TwinConfig, what="model config")


def config_from_dict(values: Mapping[str, Any], where: str = "model config") -> TwinConfig:
    """A TwinConfig from a plain nested dict (as read from TOML or a checkpoint's JSON)."""
    return MODELS.from_dict(values, where)


def preset_names() -> list[str]:
    """Names of the shipped model presets (``twinlab/presets/models/*.toml``)."""
    return MODELS.names()


def resolve_config(name: str = "foundation", overrides: Iterable[str] | Mapping = ()) -> TwinConfig:
    """Config from a preset name (``models/NAME.toml``) or a ``.toml`` path, with overrides.

    >>> resolve_config("small", ["recurrent.kind=cvt_lstm"]).recurrent.kind
    'cvt_lstm'
    """
    return MODELS.resolve(name, overrides)


def config_to_toml(config: TwinConfig, header: str = "") -> str:
    """Write a config as a preset (the inverse of :func:`resolve_config` on a file)."""
    return MODELS.to_toml(config, header)


def config_differences(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Dotted keys where two plain config dicts differ, with both values (missing = None)."""
    out = []
    for key in sorted(set(a) | set(b), key=str):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out += config_differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append((f"{prefix}{key}", va, vb))
    return out
