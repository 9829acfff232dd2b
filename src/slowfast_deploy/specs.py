"""Frozen specifications: test-time clip sampling, preprocessing and model hyper-parameters.

Every numerics-affecting default is pinned here with its mmaction2 source
(config ``slowfast_r50_8xb8-8x8x1-256e_kinetics400-rgb`` and its 0.x predecessor
``slowfast_r50_8x8x1_256e_kinetics400_rgb``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# mmaction2 `data_preprocessor` / 0.x `img_norm_cfg`: mean/std in 0-255 units, RGB order.
MEAN_RGB_255 = (123.675, 116.28, 103.53)
STD_RGB_255 = (58.395, 57.12, 57.375)


@dataclass(frozen=True, slots=True)
class ClipSpec:
    """``SampleFrames`` in test mode (``test_pipeline`` / ``val_pipeline``)."""

    clip_len: int = 32  # SampleFrames(clip_len=32)
    frame_interval: int = 2  # SampleFrames(frame_interval=2)
    num_clips: int = 1  # 1 for the reference workflow, 10 for the model-zoo protocol

    def __post_init__(self) -> None:
        for name in ("clip_len", "frame_interval", "num_clips"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClipSpec.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True, slots=True)
class PreprocessSpec:
    """Resize(-1, 256, keep_ratio) -> CenterCrop(224) or ThreeCrop(256) -> Normalize."""

    short_side: int = 256  # Resize(scale=(-1, 256))
    crop_size: int = 224  # CenterCrop(crop_size=224); ThreeCrop uses 256
    num_crops: int = 1  # 1 = CenterCrop, 3 = ThreeCrop
    mean_rgb_255: tuple[float, float, float] = MEAN_RGB_255
    std_rgb_255: tuple[float, float, float] = STD_RGB_255

    def __post_init__(self) -> None:
        if self.num_crops not in (1, 3):
            raise ValueError(f"PreprocessSpec.num_crops must be 1 or 3, got {self.num_crops}")
        if self.crop_size > self.short_side:
            raise ValueError(
                f"crop_size {self.crop_size} must not exceed short_side {self.short_side}"
            )


@dataclass(frozen=True, slots=True)
class ViewSpec:
    """A test-time protocol: how many clips and crops make the views of one video."""

    clip: ClipSpec
    preprocess: PreprocessSpec

    @property
    def num_views(self) -> int:
        return self.clip.num_clips * self.preprocess.num_crops


# The reference workflow's protocol (and mmaction2 `val_pipeline`): 1 clip x center crop 224.
SINGLE_VIEW = ViewSpec(ClipSpec(num_clips=1), PreprocessSpec(crop_size=224, num_crops=1))
# mmaction2 1.x `test_pipeline` (model-zoo numbers): 10 clips x ThreeCrop(256).
THIRTY_VIEW = ViewSpec(ClipSpec(num_clips=10), PreprocessSpec(crop_size=256, num_crops=3))
VIEWS = {1: SINGLE_VIEW, 30: THIRTY_VIEW}


def view_spec(views: int) -> ViewSpec:
    """The test protocol of ``views`` views per video (1 or 30).

    >>> view_spec(30).num_views
    30
    """
    if views not in VIEWS:
        raise ValueError(f"views must be one of {sorted(VIEWS)}, got {views!r}")
    return VIEWS[views]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """SlowFast hyper-parameters, named as in mmaction2 ``ResNet3dSlowFast``."""

    name: str
    depth: int = 50
    resample_rate: int = 4  # tau: the slow pathway sees every tau-th frame
    speed_ratio: int = 4  # alpha: fast/slow frame-rate ratio
    channel_ratio: int = 8  # 1/beta: slow/fast channel ratio
    fusion_kernel: int = 7  # temporal kernel of the lateral connections
    slow_conv1_kernel_t: int = 1  # slow_pathway conv1_kernel=(1, 7, 7)
    fast_conv1_kernel_t: int = 5  # fast_pathway conv1_kernel=(5, 7, 7)
    slow_inflate: tuple[int, int, int, int] = (0, 0, 1, 1)
    fast_inflate: tuple[int, int, int, int] = (1, 1, 1, 1)
    slow_base_channels: int = 64
    stage_blocks: tuple[int, int, int, int] = (3, 4, 6, 3)  # ResNet-50
    num_classes: int = 400
    clip_len: int = 32  # frames per view the model expects (T of the input)

    def to_dict(self) -> dict[str, str | int | tuple[int, int, int, int]]:
        return asdict(self)

    @property
    def fast_base_channels(self) -> int:
        return self.slow_base_channels // self.channel_ratio

    @property
    def head_in_channels(self) -> int:
        expansion = 4
        width = (1 << (len(self.stage_blocks) - 1)) * expansion  # 2 ** (stages - 1)
        return (self.slow_base_channels + self.fast_base_channels) * width


SLOWFAST_R50_8X8 = ModelSpec(name="slowfast_r50_8x8x1")
# 4x16: tau 16 on 32 input frames with frame_interval 2 -> 4x16 needs clip_len 32, interval 2,
# resample_rate 8, speed_ratio 8 (mmaction2 slowfast_r50_4x16x1 config).
SLOWFAST_R50_4X16 = ModelSpec(name="slowfast_r50_4x16x1", resample_rate=8, speed_ratio=8)
MODEL_SPECS = {spec.name: spec for spec in (SLOWFAST_R50_8X8, SLOWFAST_R50_4X16)}
