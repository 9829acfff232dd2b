"""SlowFast R50 in plain PyTorch, with module names that load mmaction2 checkpoints strictly.

Re-implements mmaction2 ``ResNet3dSlowFast`` + ``ResNet3dPathway`` + ``Bottleneck3d`` +
``SlowFastHead`` (Apache-2.0; Feichtenhofer et al., ICCV 2019) without mmcv/mmengine. Each
``ConvModule`` becomes ``ConvBnAct`` with the same ``conv``/``bn`` children, so a checkpoint key
like ``backbone.slow_path.layer1.0.conv1.conv.weight`` is this module's own parameter name.

::

    video [N, 3, 32, H, W]
      |-- x[:, :, ::tau] --> slow conv1+pool --(cat)--> slow layer1 --(cat)--> ... layer4 --+
      |                                      ^                       ^                   |
      |                          conv1_lateral            layer1_lateral ... layer3_lateral
      |                                      |                       |                   |
      +------------------------> fast conv1+pool ------> fast layer1 -------> ... layer4 -+
                                                                                         |
                   head: avgpool both, cat(fast 256 ch, slow 2048 ch), fc -> [N, 400] <--+

Laterals are Conv3d (fusion_kernel, 1, 1), stride (alpha, 1, 1), no bias/BN/ReLU.
"""

from __future__ import annotations

import torch
from torch import nn

from slowfast_deploy.specs import SLOWFAST_R50_8X8, ModelSpec, PreprocessSpec

EXPANSION = 4  # Bottleneck3d.expansion


class ConvBnAct(nn.Module):
    """mmcv ``ConvModule``: Conv3d (no bias) -> optional BN3d -> optional ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int],
        *,
        stride: tuple[int, int, int] = (1, 1, 1),
        padding: tuple[int, int, int] = (0, 0, 0),
        norm: bool = True,
        act: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm3d(out_channels) if norm else None
        self.relu = nn.ReLU(inplace=True) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.relu is not None:
            x = self.relu(x)
        return x


class Bottleneck3d(nn.Module):
    """1x1 (or 3x1x1 inflated) -> 1x3x3 (spatial stride) -> 1x1 expansion, plus identity."""

    def __init__(
        self, in_channels: int, planes: int, *, spatial_stride: int, inflate: bool
    ) -> None:
        super().__init__()
        kernel_t = 3 if inflate else 1  # inflate_style '3x1x1'
        self.conv1 = ConvBnAct(in_channels, planes, (kernel_t, 1, 1), padding=(kernel_t // 2, 0, 0))
        self.conv2 = ConvBnAct(
            planes, planes, (1, 3, 3), stride=(1, spatial_stride, spatial_stride), padding=(0, 1, 1)
        )
        self.conv3 = ConvBnAct(planes, planes * EXPANSION, (1, 1, 1), act=False)
        out_channels = planes * EXPANSION
        self.downsample = None
        if spatial_stride != 1 or in_channels != out_channels:
            self.downsample = ConvBnAct(
                in_channels,
                out_channels,
                (1, 1, 1),
                stride=(1, spatial_stride, spatial_stride),
                act=False,
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv3(self.conv2(self.conv1(x)))
        activated: torch.Tensor = self.relu(out + identity)
        return activated


class Pathway(nn.Module):
    """One ResNet3d pathway: stem conv1 + maxpool, layer1..layer4, optional lateral convs."""

    def __init__(
        self,
        *,
        base_channels: int,
        conv1_kernel_t: int,
        inflate: tuple[int, ...],
        stage_blocks: tuple[int, ...],
        lateral_spec: ModelSpec | None = None,
    ) -> None:
        """``lateral_spec``: the slow pathway's spec (laterals from the fast one); else none."""
        super().__init__()
        self.conv1 = ConvBnAct(
            3,
            base_channels,
            (conv1_kernel_t, 7, 7),
            stride=(1, 2, 2),
            padding=((conv1_kernel_t - 1) // 2, 3, 3),
        )
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        self.lateral = lateral_spec is not None
        ratio = lateral_spec.channel_ratio if lateral_spec else 1
        in_channels = base_channels
        self.num_stages = len(stage_blocks)
        for i, num_blocks in enumerate(stage_blocks):
            planes = base_channels * 2**i
            # a slow stage also receives the lateral features: 2 * fast channels at that point
            lateral_channels = 2 * in_channels // ratio if self.lateral else 0
            blocks = [
                Bottleneck3d(
                    (in_channels + lateral_channels) if b == 0 else planes * EXPANSION,
                    planes,
                    spatial_stride=(1 if i == 0 else 2) if b == 0 else 1,
                    inflate=inflate[i] == 1,
                )
                for b in range(num_blocks)
            ]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            in_channels = planes * EXPANSION
        if lateral_spec is not None:
            fast = base_channels // ratio
            self.conv1_lateral = _lateral(fast, lateral_spec)
            for i in range(self.num_stages - 1):
                fast_out = fast * 2**i * EXPANSION
                self.add_module(f"layer{i + 1}_lateral", _lateral(fast_out, lateral_spec))

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        pooled: torch.Tensor = self.maxpool(self.conv1(x))
        return pooled

    def stage(self, i: int) -> nn.Module:
        return self.get_submodule(f"layer{i + 1}")

    def lateral_conv(self, i: int) -> nn.Module:
        """Lateral after the stem (``i = 0``) or after stage ``i`` (``layer{i}_lateral``)."""
        return self.get_submodule("conv1_lateral" if i == 0 else f"layer{i}_lateral")


def _lateral(fast_channels: int, spec: ModelSpec) -> ConvBnAct:
    k = spec.fusion_kernel
    return ConvBnAct(
        fast_channels,
        2 * fast_channels,
        (k, 1, 1),
        stride=(spec.speed_ratio, 1, 1),
        padding=((k - 1) // 2, 0, 0),
        norm=False,
        act=False,
    )


class SlowFastBackbone(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.slow_path = Pathway(
            base_channels=spec.slow_base_channels,
            conv1_kernel_t=spec.slow_conv1_kernel_t,
            inflate=spec.slow_inflate,
            stage_blocks=spec.stage_blocks,
            lateral_spec=spec,
        )
        self.fast_path = Pathway(
            base_channels=spec.fast_base_channels,
            conv1_kernel_t=spec.fast_conv1_kernel_t,
            inflate=spec.fast_inflate,
            stage_blocks=spec.stage_blocks,
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = self.spec
        # mmaction2 uses nearest interpolation with scale 1/tau; for integer tau it picks frames
        # 0, tau, 2*tau, ... exactly like this slice (exported as a Slice/Gather, not a Resize).
        x_slow = self.slow_path.stem(x[:, :, :: spec.resample_rate])
        x_fast = self.fast_path.stem(x[:, :, :: spec.resample_rate // spec.speed_ratio])
        x_slow = torch.cat((x_slow, self.slow_path.lateral_conv(0)(x_fast)), dim=1)
        for i in range(self.slow_path.num_stages):
            x_slow = self.slow_path.stage(i)(x_slow)
            x_fast = self.fast_path.stage(i)(x_fast)
            if i != self.slow_path.num_stages - 1:
                x_slow = torch.cat((x_slow, self.slow_path.lateral_conv(i + 1)(x_fast)), dim=1)
        return x_slow, x_fast


class SlowFastHead(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc_cls = nn.Linear(in_channels, num_classes)  # dropout 0.5 is a no-op in eval

    def forward(self, features: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x_slow, x_fast = features
        # [N, 256 + 2048, 1, 1, 1], fast first as in mmaction2 SlowFastHead
        x = torch.cat((self.avg_pool(x_fast), self.avg_pool(x_slow)), dim=1)
        logits: torch.Tensor = self.fc_cls(x.flatten(1))
        return logits


class SlowFast(nn.Module):
    """``[N, 3, T, H, W]`` normalised clips -> ``[N, num_classes]`` logits."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.backbone = SlowFastBackbone(spec)
        self.cls_head = SlowFastHead(spec.head_in_channels, spec.num_classes)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features: tuple[torch.Tensor, torch.Tensor] = self.backbone(x)
        return features

    def forward_head(self, features: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        logits: torch.Tensor = self.cls_head(features)
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class ReferenceContract(nn.Module):
    """The reference workflow's I/O: ``video [N, V, 3, T, H, W]`` -> ``class [N*V, classes]``.

    Views are folded into the batch and not averaged (mmaction2 ``forward_dummy``);
    ``softmax=True`` matches the guide's ``--softmax`` export.

    ``normalize`` (a ``PreprocessSpec``) makes a uint8-input model: ``video`` holds RGB crops
    0-255 and the graph computes ``(x - mean) / std`` in float32, the same operations as
    ``video.preprocess.normalize_to_ncthw``, so its scores equal the float model's.
    ``dtype`` is the dtype the backbone runs in (``torch.bfloat16``: weights and activations),
    with each BatchNorm folded into its convolution first, in float32 (``fold_batchnorm``: one
    rounding per layer instead of two); normalisation, the head (pooling and ``fc_cls`` over
    2304 features) and softmax stay in float32, and the output is float32. With float32 the
    operations are exactly those of ``model(x)``.
    """

    mean: torch.Tensor  # [1, 3, 1, 1, 1] float32, with ``normalize`` only
    std: torch.Tensor

    def __init__(
        self,
        model: SlowFast,
        *,
        softmax: bool,
        normalize: PreprocessSpec | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if dtype != torch.float32:
            fold_batchnorm(model)
            model.backbone.to(dtype)
        self.model = model
        self.softmax = softmax
        self.dtype = dtype
        self.byte_input = normalize is not None
        if normalize is not None:  # [1, 3, 1, 1, 1] float32 constants, not checkpoint state
            shape = (1, 3, 1, 1, 1)
            mean = torch.tensor(normalize.mean_rgb_255, dtype=torch.float32).reshape(shape)
            std = torch.tensor(normalize.std_rgb_255, dtype=torch.float32).reshape(shape)
            self.register_buffer("mean", mean, persistent=False)
            self.register_buffer("std", std, persistent=False)
        # Take the wrapped model's mode: exporters restore the wrapper's mode recursively
        # afterwards, which would otherwise switch an eval-mode model to training (BN!).
        self.train(model.training)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = video.flatten(0, 1)
        if self.byte_input:
            x = (x.to(torch.float32) - self.mean) / self.std  # [N*V, 3, T, H, W] float32
        slow, fast = self.model.forward_features(x.to(self.dtype))
        logits = self.model.forward_head((slow.to(torch.float32), fast.to(torch.float32)))
        return torch.softmax(logits, dim=1) if self.softmax else logits


def fold_batchnorm(model: nn.Module) -> None:
    """Fold every ``ConvBnAct``'s eval-mode BatchNorm into its convolution, in place.

    ``conv(x) * gamma / sqrt(var + eps) + (beta - mean * gamma / sqrt(var + eps))`` as one
    convolution with a bias, computed in float32 (``torch.nn.utils.fusion``); used before a
    reduced-precision cast so each layer's output is rounded once. Equal to the unfolded
    model within float32 rounding.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in model.modules():
        if isinstance(module, ConvBnAct) and module.bn is not None:
            module.conv = fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = None


def slowfast_r50(spec: ModelSpec = SLOWFAST_R50_8X8) -> SlowFast:
    """Build an (untrained) SlowFast in eval mode; load weights with ``load_checkpoint``."""
    return SlowFast(spec).eval()
